#!/bin/bash
# Tidemark's DirectAdmin hook, installed as scripts/custom/<hook>/tidemark.sh (DirectAdmin
# runs every script in that folder, so a provider's own scripts/custom/<hook>.sh and the
# other scripts in the folder stay as they are). The hook is the folder's name; DirectAdmin
# passes the account in the environment (username; newusername for a rename).
#
# It never blocks DirectAdmin: a non-zero exit of a *_pre hook would stop the action
# (user_destroy_pre: the removal), so it always exits 0, and a removal waits at most
# TIME_LIMIT seconds (plus a grace).
set -u
umask 077
TIDEMARK='@TIDEMARK_BIN@'
LOG='@DATA_DIR@/logs/panel-hooks.log'
TIME_LIMIT=900

hook=$(basename "$(dirname "$0")")
case "$hook" in
  user_create_post) event=created ;;
  user_destroy_pre) event=removed ;;
  *) exit 0 ;;
esac
if [ -x "$TIDEMARK" ]; then
  out=$(timeout --kill-after=30 "$((TIME_LIMIT + 60))" "$TIDEMARK" --json panel-event "$event" --panel directadmin --time-limit "$TIME_LIMIT" < /dev/null 2>&1)
  status=$?
  { mkdir -p "${LOG%/*}" && printf '%s %s exit=%s %s\n' "$(date -u +%FT%TZ)" "$hook" "$status" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-2000)" >> "$LOG"; } 2>/dev/null
fi
exit 0
