#!/bin/sh
# Prints what a CGI script is told about its request: its process id, then its whole
# environment (the RFC 3875 meta-variables), one NAME=value per line, sorted.
printf 'Content-Type: text/plain\r\n\r\n'
echo "pid=$$"
env | sort
