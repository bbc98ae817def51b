-- closewait diagnose's headline numbers, per host and server service and over all hosts,
-- from the dataset scale/closewait_dask.py writes (OUT/host=<host>/part-0.parquet).
--
--   duckdb -cmd "SET VARIABLE dataset = 'OUT'" < scale/headline.sql
--
-- Each column is a number `closewait diagnose` prints, computed from the same columns of
-- the connection table (docs/parquet.md) with the rule diagnose applies
-- (crates/closewait-render/src/diagnose/); tests/python/test_scale.py checks every one
-- against `closewait diagnose --json` run per host on the same files. diagnose prints a
-- finding only past its thresholds; the table prints the counts whether or not they are.
--
-- `host` is read as text whatever it looks like (a host named 01 stays '01'); the row with
-- host '*' adds up all hosts for that service.

CREATE OR REPLACE TEMP VIEW connections AS
SELECT *,
       -- ip:port as diagnose prints a service, IPv6 in brackets
       CASE WHEN contains(server_ip, ':') THEN '[' || server_ip || ']' ELSE server_ip END
           || ':' || server_port AS service
FROM read_parquet(getvariable('dataset') || '/host=*/*.parquet',
                  hive_partitioning = true, hive_types = {'host': VARCHAR});

SELECT coalesce(host, '*') AS host,
       service,
       -- the header line: "N TCP connections"; close_wait_leak's connections_to_service
       count(*) AS connections,
       -- close_wait_leak (its count, per leaking side): the side that got a FIN and never
       -- sent its own, still in CLOSE_WAIT at the end of the capture (RFC 9293 §3.6: no
       -- timer ends CLOSE_WAIT, only the application's close())
       count(*) FILTER (WHERE close_who_failed_to_respond = 'client'
                          AND client_state = 'CLOSE_WAIT') AS client_left_in_close_wait,
       count(*) FILTER (WHERE close_who_failed_to_respond = 'server'
                          AND server_state = 'CLOSE_WAIT') AS server_left_in_close_wait,
       -- server_time_wait: connections closed at all (FIN or RST), and those the server
       -- closed first (its FIN first, or a simultaneous close), which put TIME_WAIT on it
       count(*) FILTER (WHERE close_kind NOT IN ('open', 'refused', 'syn_timeout',
                                                 'handshake_incomplete')) AS closed,
       count(*) FILTER (WHERE close_kind = 'simultaneous'
                           OR (close_first = 'FIN' AND close_first_by = 'server'))
           AS server_closed_first,
       count(*) FILTER (WHERE (close_kind = 'simultaneous'
                               OR (close_first = 'FIN' AND close_first_by = 'server'))
                          AND (server_time_wait_secs IS NOT NULL
                               OR server_state = 'TIME_WAIT')) AS server_reached_time_wait,
       count(*) FILTER (WHERE (close_kind = 'simultaneous'
                               OR (close_first = 'FIN' AND close_first_by = 'server'))
                          AND server_state = 'TIME_WAIT') AS server_in_time_wait_at_end,
       -- late_write_rst: a FIN, then the peer wrote anyway and the closer answered RST
       -- (Linux: RST,ACK to data on a closed socket; a bare RST, RFC 9293 §3.10.7.1, once
       -- the orphaned FIN_WAIT_2 socket is gone) while the peer had not sent its own FIN
       count(*) FILTER (WHERE close_kind = 'fin_then_rst'
                          AND close_first = 'FIN'
                          AND close_rst_by = close_first_by
                          AND close_who_failed_to_respond
                              = CASE close_first_by WHEN 'client' THEN 'server'
                                                    ELSE 'client' END) AS late_write_rst,
       -- refused and syn_timeout: the failed connection attempts
       count(*) FILTER (WHERE close_kind = 'refused') AS refused,
       count(*) FILTER (WHERE close_kind = 'syn_timeout') AS syn_timeout
FROM connections
GROUP BY GROUPING SETS ((host, service), (service))
ORDER BY grouping(host), host, service;
