module gocgi

go 1.19
