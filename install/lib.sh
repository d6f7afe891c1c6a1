# Shared by install.sh and uninstall.sh (sourced, not run).
#
# Everything written lives under $ROOT (empty on a real server; a temporary tree in the
# tests). What the installer adds is recorded under $ROOT/etc/tidemark so the uninstaller
# removes exactly that and nothing else:
#   install.env      versions, directories, panel
#   installed-files  every file (and, ending in "/", every folder tree) written outside the app dir
#   created-dirs     every directory that did not exist before, in creation order
#   registrations    every call made to a panel tool, as the uninstaller has to undo it

STATE_REL=/etc/tidemark
# Where the daemon meets the panel pages that run as an account (config.json bridgeDir, same default).
BRIDGE_DIR=/var/run/tidemark-bridge

die() { echo "tidemark: $*" >&2; exit 1; }
usage_error() { echo "tidemark: $*" >&2; echo "(--help lists the options)" >&2; exit 2; }
say() { echo "$*"; }

# Paths end up in scripts and sed expressions: keep them to plain characters.
check_path() { # what value allow_empty
  local what=$1 value=$2
  if [ -z "$value" ] && [ "${3:-}" = empty-ok ]; then return 0; fi
  case "$value" in
    /*) ;;
    *) usage_error "$what must be an absolute path: '$value'" ;;
  esac
  [[ "$value" =~ ^/[A-Za-z0-9._/-]*$ ]] || usage_error "$what may hold only letters, digits and . _ - /: '$value'"
  [[ "/$value/" != *"/../"* ]] || usage_error "$what may not contain '..': '$value'"
}

state() { echo "$ROOT$STATE_REL/$1"; }

record() { # list line
  local file
  file=$(state "$1")
  [ -f "$file" ] && grep -qxF -- "$2" "$file" && return 0
  printf '%s\n' "$2" >> "$file"
}

recorded() { # list line
  local file
  file=$(state "$1")
  [ -f "$file" ] && grep -qxF -- "$2" "$file"
}

# Creates a directory (path without $ROOT) and its missing parents, recording each one made.
ensure_dir() { # path [mode of the last component]
  local target=$1 mode=${2:-0755} p missing=()
  p=$target
  while [ "$p" != / ] && [ ! -d "$ROOT$p" ]; do
    [ -e "$ROOT$p" ] && die "$ROOT$p exists and is not a directory"
    missing=("$p" "${missing[@]}")
    p=$(dirname "$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  mkdir -p -m 0755 "$ROOT$target"
  chmod "$mode" "$ROOT$target"
  for p in "${missing[@]}"; do record created-dirs "$p"; done
}

# The values put into template files as @NAME@.
substitute() {
  sed -e "s|@TIDEMARK_BIN@|$ROOT/usr/local/bin/tidemark|g" \
      -e "s|@DATA_DIR@|$ROOT$DATA_DIR|g" \
      -e "s|@APP_DIR@|$ROOT$APP_DIR|g" \
      -e "s|@NODE@|$NODE|g" \
      -e "s|@BRIDGE_DIR@|$ROOT$BRIDGE_DIR|g" \
      -e "s|@VERSION@|$VERSION|g"
}

# Writes one file (path without $ROOT). A file that is there and not Tidemark's is never overwritten.
install_file() { # source dest mode [template]
  local src=$1 dest=$2 mode=$3 tmp
  if [ -e "$ROOT$dest" ] && ! recorded installed-files "$dest"; then
    die "$ROOT$dest exists and was not installed by Tidemark: not overwriting it (move it away and run the installer again)"
  fi
  ensure_dir "$(dirname "$dest")"
  tmp="$ROOT$dest.tidemark-new"
  if [ "${4:-}" = template ]; then substitute < "$src" > "$tmp"; else cat "$src" > "$tmp"; fi
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$ROOT$dest"
  record installed-files "$dest"
}

# Copies a folder tree (path without $ROOT) as a whole; on upgrade the old copy is replaced.
install_tree() { # source dest
  local src=$1 dest=$2 tmp
  if [ -e "$ROOT$dest" ] && ! recorded installed-files "$dest/"; then
    die "$ROOT$dest exists and was not installed by Tidemark: not overwriting it"
  fi
  ensure_dir "$(dirname "$dest")"
  tmp="$ROOT$dest.tidemark-new"
  rm -rf "$tmp"
  cp -a "$src" "$tmp"
  rm -rf "$ROOT$dest"
  mv "$tmp" "$ROOT$dest"
  record installed-files "$dest/"
}

# Runs a panel tool, showing what it runs; a failure stops with the tool's own message.
run_tool() {
  say "  running: $*"
  "$@" || die "$1 failed (exit $?); fix the cause and run the installer again"
}

detect_panel() {
  if [ -f "$ROOT/usr/local/cpanel/version" ]; then
    echo cpanel
  elif [ -e "$ROOT/usr/local/directadmin/directadmin" ] || [ -f "$ROOT/usr/local/directadmin/conf/directadmin.conf" ]; then
    echo directadmin
  else
    echo standalone
  fi
}

systemd_usable() {
  [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl > /dev/null 2>&1
}

# cPanel standardized hooks Tidemark registers: event and stage.
CPANEL_HOOKS=(
  "Accounts::Create post"
  "Accounts::Remove pre"
  "Accounts::Modify post"
  "Accounts::suspendacct post"
  "Accounts::unsuspendacct post"
)
CPANEL_HOOK_SCRIPT=/usr/local/cpanel/3rdparty/bin/tidemark-hook

# DirectAdmin hooks Tidemark installs (scripts/custom/<hook>/tidemark.sh).
DIRECTADMIN_HOOKS=(user_create_post user_destroy_pre)
