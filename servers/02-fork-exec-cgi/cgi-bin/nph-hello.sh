#!/bin/sh
# A non-parsed-header script: it writes the whole response, status line included.
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Nph: yes\r\n\r\n'
printf 'Hello from an nph script\n'
