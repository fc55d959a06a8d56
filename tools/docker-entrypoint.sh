#!/bin/sh
# Entrypoint of the serving and reporting images: /usr/local/bin/docker-entrypoint.sh.
#
# The services write into folders bind-mounted from the checkout (data/, artifacts/,
# reporting/workspace/), whoever owns it: root, UID 1000, another UID. Started as root
# (the images have no USER), this script, as the official database images do:
#   1. picks the user to run as: the owner of DATA_DIR (the checkout's data/ folder),
#      so files written into the checkout stay its owner's; the image's own user
#      `app` (UID 1000) when that owner is root;
#   2. gives that user whatever is not yet theirs in the folders the service writes
#      (DATA_DIR, ARTIFACTS_DIR, WORKSPACE_DIR, when set and mounted writable), e.g. a
#      root-owned clone, or a folder Docker created itself for a missing bind source;
#   3. drops root for good (setpriv: new UID, GID, no supplementary groups; the
#      capabilities go with UID 0) and runs the command as that user.
# Started as a non-root user already (`docker run --user`, Kubernetes runAsUser), it
# changes nothing and runs the command.
#
# Needs the capabilities CHOWN (step 2), DAC_OVERRIDE (to walk and test folders whatever
# their owner and modes), SETUID and SETGID (step 3): the compose files add back these
# four after dropping all. They are gone once the command runs (a non-root process has
# none); no-new-privileges stays on (it only stops gaining privileges).
set -eu

# The serving image's CMD is the brief's `uvicorn api:app`, whose worker count comes from
# WEB_CONCURRENCY: SERVING_WORKERS, the stack's own setting (README), sets it, for that
# command only (every service reads the same .env, and `evidently ui`, which runs uvicorn
# with an app object, refuses to start when WEB_CONCURRENCY asks for workers).
if [ "${1:-}" = uvicorn ] && [ -n "${SERVING_WORKERS:-}" ] && [ -z "${WEB_CONCURRENCY:-}" ]; then
  export WEB_CONCURRENCY="$SERVING_WORKERS"
fi

if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi

owner_dir="${DATA_DIR:-/data}"
uid="$(stat -c %u "$owner_dir")"
gid="$(stat -c %g "$owner_dir")"
if [ "$uid" = 0 ]; then
  uid="$(id -u app)"
  gid="$(id -g app)"
fi

for dir in ${DATA_DIR:-} ${ARTIFACTS_DIR:-} ${WORKSPACE_DIR:-}; do
  # A folder mounted read-only is only read: nothing to give.
  [ -d "$dir" ] && [ -w "$dir" ] || continue
  find "$dir" -xdev ! -user "$uid" -exec chown -h "$uid:$gid" {} +
done

# HOME as a login would set it (the app's home; /tmp for a user the image does not know).
if [ "$uid" = "$(id -u app)" ]; then HOME=/home/app; else HOME=/tmp; fi
export HOME
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
