#!/bin/sh
# The client of captures/record-apps 30: curl speaking HTTP/1.0 (-0) to nginx.
#
# Usage: curl_http10.sh URL PAUSE_S
# Connection 1: a plain HTTP/1.0 GET: no keep-alive unless asked for, so the server closes
# after its answer. PAUSE_S later, connection 2: one curl run with two URLs and
# "Connection: keep-alive": HTTP/1.0's opt-in keep-alive; curl reuses the connection for the
# second GET when the answer says keep-alive, then exits and closes it itself.
# JSON lines on stdout like PoolClient.java; curl's own -v log (request and response heads,
# "left intact", "Closing connection") on stderr.
set -eu
url=$1 pause=$2
t0=$(date +%s.%N)
log() { printf '{"who":"client","ev":"%s"%s,"t":%s,"epoch":%s}\n' "$1" "${2:-}" \
    "$(echo "$(date +%s.%N) - $t0" | bc | sed 's/^\./0./')" "$(date +%s.%3N)"; }
log start ',"mode":"curl10","version":"'"$(curl --version | head -1 | cut -d' ' -f2)"'"'
echo "# connection 1: curl -0 $url" >&2
out=$(curl -0 -sv -o /dev/null -w '%{http_code} %{local_port} %{num_connects}' "$url")
log response ',"round":1,"index":0,"http_version":"1.0","status":'"${out%% *}"',"local":"10.77.0.1:'"$(echo "$out" | cut -d' ' -f2)"'"'
sleep "$pause"
echo "# connection 2: curl -0 -H 'Connection: keep-alive' $url $url" >&2
out=$(curl -0 -sv -H 'Connection: keep-alive' -o /dev/null -o /dev/null \
    -w '%{http_code} %{local_port} %{num_connects}\n' "$url" "$url")
i=0
echo "$out" | while read -r code port connects; do
    log response ',"round":2,"index":'"$i"',"http_version":"1.0","status":'"$code"',"local":"10.77.0.1:'"$port"'","new_connections":'"$connects"
    i=$((i + 1))
done
log done
sleep 600  # killed after the capture, like the other clients
