module closewait/captures/go-client

go 1.19
