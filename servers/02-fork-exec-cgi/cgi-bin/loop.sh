#!/bin/sh
# Never answers: the server must kill it after --cgi-timeout and answer 504. (`sleep` in a loop
# also checks that the kill reaches the script's own children, its process group.)
while :; do sleep 1; done
