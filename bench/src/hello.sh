#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\nHello from sh, query=%s\n' "$QUERY_STRING"
