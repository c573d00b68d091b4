#!/bin/sh
# Answers with a status of its own choosing, through the CGI Status field.
printf 'Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n'
printf 'No such thing here: %s\n' "$PATH_INFO"
