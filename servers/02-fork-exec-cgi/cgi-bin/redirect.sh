#!/bin/sh
# Redirects: ?to=/path is a local redirect (the server answers /path itself, the client never
# knows); anything else is a client redirect (a 302 to an absolute URL).
case "$QUERY_STRING" in
  to=/*) printf 'Location: %s\r\n\r\n' "${QUERY_STRING#to=}" ;;
  *) printf 'Location: http://%s:%s/hello\r\n\r\n' "$SERVER_NAME" "$SERVER_PORT" ;;
esac
