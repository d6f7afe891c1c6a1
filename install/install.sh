#!/usr/bin/env bash
# Installs Tidemark from a built source tree (npm ci && npm run build), or upgrades it in
# place: running it again replaces the application and keeps the data directory (backups
# catalog, settings, secrets) and config.json as they are. Detects cPanel & WHM,
# DirectAdmin or neither (standalone) and registers Tidemark with the panel it finds.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
  cat <<'EOF'
Usage: install/install.sh [options]

Installs Tidemark, or upgrades an installed Tidemark in place (data and settings kept).

  --prefix DIR     put every path written under DIR (for tests: a panel's files built in
                   a temporary tree); also $TIDEMARK_ROOT. Nothing is started then.
  --app-dir DIR    the application (default /usr/local/tidemark)
  --data-dir DIR   state: catalog, settings, secrets, logs (default /var/lib/tidemark)
  --panel NAME     auto (default), cpanel, directadmin or standalone
  --node FILE      the Node.js 20+ binary to run Tidemark with (default: node on PATH)
  -h, --help       this text
EOF
}

ROOT=${TIDEMARK_ROOT:-}
APP_DIR=''
DATA_DIR=''
PANEL=auto
NODE=''
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage_error "--prefix needs a directory"; ROOT=$2; shift 2 ;;
    --prefix=*) ROOT=${1#*=}; shift ;;
    --app-dir) [ $# -ge 2 ] || usage_error "--app-dir needs a directory"; APP_DIR=$2; shift 2 ;;
    --app-dir=*) APP_DIR=${1#*=}; shift ;;
    --data-dir) [ $# -ge 2 ] || usage_error "--data-dir needs a directory"; DATA_DIR=$2; shift 2 ;;
    --data-dir=*) DATA_DIR=${1#*=}; shift ;;
    --panel) [ $# -ge 2 ] || usage_error "--panel needs a name"; PANEL=$2; shift 2 ;;
    --panel=*) PANEL=${1#*=}; shift ;;
    --node) [ $# -ge 2 ] || usage_error "--node needs a file"; NODE=$2; shift 2 ;;
    --node=*) NODE=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

ROOT=${ROOT%/}
check_path "--prefix" "$ROOT" empty-ok
[ -z "$ROOT" ] || [ -d "$ROOT" ] || usage_error "--prefix $ROOT is not a directory"
case "$PANEL" in auto|cpanel|directadmin|standalone) ;; *) usage_error "--panel must be auto, cpanel, directadmin or standalone" ;; esac
[ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || die "run the installer as root (it installs a system service and registers with the panel)"

# An upgrade keeps the directories of the installed copy.
PREV_VERSION='' PREV_APP_DIR='' PREV_DATA_DIR='' PREV_PANEL=''
if [ -f "$(state install.env)" ]; then
  # shellcheck disable=SC1090
  . <(sed -n 's/^\(VERSION\|APP_DIR\|DATA_DIR\|PANEL\)=\([A-Za-z0-9._/-]*\)$/PREV_\1=\2/p' "$(state install.env)")
fi
if [ -n "$PREV_APP_DIR" ] && [ -n "$APP_DIR" ] && [ "${APP_DIR%/}" != "$PREV_APP_DIR" ]; then
  die "Tidemark is installed in $PREV_APP_DIR; to move it, run uninstall.sh first (data is kept) and install again with --app-dir"
fi
if [ -n "$PREV_DATA_DIR" ] && [ -n "$DATA_DIR" ] && [ "${DATA_DIR%/}" != "$PREV_DATA_DIR" ]; then
  die "Tidemark keeps its data in $PREV_DATA_DIR; moving it is not done by the installer"
fi
APP_DIR=${APP_DIR:-${PREV_APP_DIR:-/usr/local/tidemark}}
DATA_DIR=${DATA_DIR:-${PREV_DATA_DIR:-/var/lib/tidemark}}
APP_DIR=${APP_DIR%/}
DATA_DIR=${DATA_DIR%/}
check_path "--app-dir" "$APP_DIR"
check_path "--data-dir" "$DATA_DIR"
for d in "$APP_DIR" "$DATA_DIR"; do
  case "$d" in /|/usr|/usr/local|/var|/var/lib|/etc|/opt|/home|/root) usage_error "refusing to use $d itself as a Tidemark directory" ;; esac
done
[ "$APP_DIR" != "$DATA_DIR" ] || usage_error "--app-dir and --data-dir must differ"

# What is installed must be built already: the installer never compiles.
[ -f "$SRC/dist/server/cli/main.js" ] || die "$SRC is not built: run 'npm ci && npm run build' there first"
[ -d "$SRC/node_modules" ] || die "$SRC has no node_modules: run 'npm ci' there first"
# The bridge socket asks the kernel who connected through this addon (built by npm run build).
[ -f "$SRC/dist/server/native/tidemark.node" ] || die "$SRC/dist/server/native/tidemark.node is missing: run 'npm run build' there (it needs a C compiler, make and python3)"
if [ -z "$NODE" ]; then NODE=$(command -v node || true); fi
[ -n "$NODE" ] && [ -x "$NODE" ] || die "Node.js was not found (give --node FILE)"
NODE=$(readlink -f "$NODE")
check_path "--node" "$NODE"
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "$NODE is older than Node.js 20"
VERSION=$("$NODE" -p 'require(process.argv[1]).version' "$SRC/package.json")

DETECTED=$(detect_panel)
if [ "$PANEL" = auto ]; then PANEL=$DETECTED; fi
if [ -n "$PREV_PANEL" ] && [ "$PREV_PANEL" != standalone ] && [ "$PREV_PANEL" != "$PANEL" ]; then
  die "Tidemark is registered with $PREV_PANEL; run uninstall.sh first to change panels"
fi

if [ -n "$PREV_VERSION" ]; then say "Upgrading Tidemark $PREV_VERSION to $VERSION (panel: $PANEL)"; else say "Installing Tidemark $VERSION (panel: $PANEL)"; fi
[ -z "$ROOT" ] || say "  every path under $ROOT"

ensure_dir "$STATE_REL" 0700

# 1. The application: staged beside its place, then swapped in, so a failed copy never
#    leaves half an application behind.
ensure_dir "$(dirname "$APP_DIR")"
STAGE="$ROOT$APP_DIR.new.$$"
trap 'rm -rf "$STAGE"' EXIT
rm -rf "$STAGE"
mkdir -p "$STAGE/dist" "$STAGE/install" "$STAGE/plugin"
cp -a "$SRC/dist/server" "$STAGE/dist/server"
cp -a "$SRC/views" "$STAGE/views"
cp -a "$SRC/package.json" "$STAGE/package.json"
[ -f "$SRC/package-lock.json" ] && cp -a "$SRC/package-lock.json" "$STAGE/package-lock.json"
cp -a "$SRC/plugin/." "$STAGE/plugin/"
cp -a "$HERE/install.sh" "$HERE/uninstall.sh" "$HERE/lib.sh" "$HERE/tidemark.service" "$STAGE/install/"
cp -a "$SRC/node_modules/." "$STAGE/node_modules/"
if command -v npm > /dev/null 2>&1; then
  # Development tools (the TypeScript compiler, type packages) are not needed to run.
  (cd "$STAGE" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund > /dev/null 2>&1) \
    || say "  note: npm prune failed; the development packages stay installed"
fi
printf 'Tidemark %s\n' "$VERSION" > "$STAGE/.tidemark-app"
# Account workers run as each account and load the application: it must be readable by all
# (nothing secret lives here; secrets stay in the root-only data directory).
chmod -R u+rwX,go+rX,go-w "$STAGE"
if [ -d "$ROOT$APP_DIR" ]; then
  [ -f "$ROOT$APP_DIR/.tidemark-app" ] || die "$ROOT$APP_DIR exists and is not a Tidemark installation: not replacing it"
  mv "$ROOT$APP_DIR" "$ROOT$APP_DIR.old.$$"
  mv "$STAGE" "$ROOT$APP_DIR"
  rm -rf "$ROOT$APP_DIR.old.$$"
else
  mv "$STAGE" "$ROOT$APP_DIR"
fi
trap - EXIT
say "  application in $ROOT$APP_DIR"

# 2. The data directory: created once, never rewritten (an upgrade keeps it as it is).
if [ ! -d "$ROOT$DATA_DIR" ]; then
  mkdir -p "$ROOT$DATA_DIR"
  chmod 0700 "$ROOT$DATA_DIR"
  say "  data in $ROOT$DATA_DIR (new)"
else
  say "  data in $ROOT$DATA_DIR (kept)"
fi
mkdir -p -m 0700 "$ROOT$DATA_DIR/logs"

# 3. The command on PATH, and the service.
WRAPPER=$(mktemp)
cat > "$WRAPPER" <<'EOF'
#!/bin/sh
# The tidemark command, installed by Tidemark's installer: the installed application with
# its state directory ($TIDEMARK_HOME, or --data-dir, overrides it).
TIDEMARK_HOME=${TIDEMARK_HOME:-@DATA_DIR@}
export TIDEMARK_HOME
exec @NODE@ @APP_DIR@/dist/server/cli/main.js "$@"
EOF
install_file "$WRAPPER" /usr/local/bin/tidemark 0755 template
rm -f "$WRAPPER"
install_file "$HERE/tidemark.service" /etc/systemd/system/tidemark.service 0644 template

# 4. The panel.
register_cpanel() {
  local cp=/usr/local/cpanel tool entry event stage
  for tool in bin/register_appconfig scripts/install_plugin bin/manage_hooks; do
    [ -x "$ROOT$cp/$tool" ] || die "cPanel's $ROOT$cp/$tool is missing: is cPanel & WHM complete on this server?"
  done
  # WHM: the page bridge, its icon, Tidemark's reseller privilege, and the AppConfig entry.
  install_file "$SRC/plugin/cpanel/whm/index.cgi" $cp/whostmgr/docroot/cgi/tidemark/index.cgi 0755 template
  install_file "$SRC/plugin/cpanel/whm/tidemark.svg" $cp/whostmgr/docroot/addon_plugins/tidemark.svg 0644
  install_file "$SRC/plugin/cpanel/acl/Tidemark.pm" $cp/Cpanel/Config/ConfigObj/Driver/Tidemark.pm 0644
  install_file "$SRC/plugin/cpanel/acl/Tidemark/META.pm" $cp/Cpanel/Config/ConfigObj/Driver/Tidemark/META.pm 0644
  run_tool "$ROOT$cp/bin/register_appconfig" "$ROOT$APP_DIR/plugin/cpanel/whm/tidemark.conf"
  record registrations "appconfig tidemark"
  # cPanel (Jupiter): the page, then its entry in the interface and in the Feature Manager.
  install_file "$SRC/plugin/cpanel/jupiter-page/index.live.pl" $cp/base/frontend/jupiter/tidemark/index.live.pl 0755 template
  run_tool "$ROOT$cp/scripts/install_plugin" "$ROOT$APP_DIR/plugin/cpanel/jupiter" --theme jupiter
  record registrations "jupiter $APP_DIR/plugin/cpanel/jupiter"
  # Account events. A hook registered by an earlier install stays registered (the script path does not change).
  install_file "$SRC/plugin/cpanel/hooks/tidemark-hook" "$CPANEL_HOOK_SCRIPT" 0755 template
  for entry in "${CPANEL_HOOKS[@]}"; do
    read -r event stage <<< "$entry"
    if recorded registrations "hook $event $stage"; then continue; fi
    run_tool "$ROOT$cp/bin/manage_hooks" add script "$ROOT$CPANEL_HOOK_SCRIPT" --manual --category Whostmgr --event "$event" --stage "$stage"
    record registrations "hook $event $stage"
  done
}

register_directadmin() {
  local da=/usr/local/directadmin hook
  [ -d "$ROOT$da/plugins" ] || die "DirectAdmin's $ROOT$da/plugins is missing: is DirectAdmin complete on this server?"
  local plugin
  plugin=$(mktemp -d)
  cp -a "$SRC/plugin/directadmin/tidemark/." "$plugin/"
  substitute < "$SRC/plugin/directadmin/tidemark/plugin.conf" > "$plugin/plugin.conf"
  # The pages run the installed forwarder (ownership and modes kept from the copy).
  local page
  for page in "$plugin"/*/*.raw; do
    substitute < "$page" > "$page.new" && cat "$page.new" > "$page" && rm -f "$page.new"
  done
  chmod 0755 "$plugin"
  install_tree "$plugin" $da/plugins/tidemark
  rm -rf "$plugin"
  # DirectAdmin runs every script in scripts/custom/<hook>/: the provider's own scripts stay untouched.
  for hook in "${DIRECTADMIN_HOOKS[@]}"; do
    install_file "$SRC/plugin/directadmin/custom-hooks/tidemark.sh" "$da/scripts/custom/$hook/tidemark.sh" 0700 template
  done
  if [ -z "$ROOT" ] && id diradmin > /dev/null 2>&1; then
    chown -R diradmin:diradmin "$da/plugins/tidemark"
  fi
}

case "$PANEL" in
  cpanel) register_cpanel ;;
  directadmin) register_directadmin ;;
  standalone) say "  no panel found: Tidemark runs standalone (tidemark serve, and the tidemark command)" ;;
esac

# 5. What was installed, for the next upgrade and for uninstall.sh.
{
  echo "# Written by Tidemark's installer; read by install.sh (upgrade) and uninstall.sh."
  echo "VERSION=$VERSION"
  echo "PREVIOUS_VERSION=$PREV_VERSION"
  echo "PANEL=$PANEL"
  echo "APP_DIR=$APP_DIR"
  echo "DATA_DIR=$DATA_DIR"
  echo "NODE=$NODE"
  echo "INSTALLED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$(state install.env.new)"
mv -f "$(state install.env.new)" "$(state install.env)"

# 6. The service.
if systemd_usable; then
  systemctl daemon-reload
  systemctl enable tidemark.service > /dev/null 2>&1
  if [ -n "$PREV_VERSION" ]; then systemctl restart tidemark.service; else systemctl start tidemark.service; fi
  say "  service tidemark.service enabled and (re)started"
elif [ -n "$ROOT" ]; then
  say "  service: unit written, systemctl not called (--prefix given)"
else
  say "  service: unit written, systemctl not called (systemd is not running here); start the daemon with: tidemark serve"
fi
say "Done: Tidemark $VERSION. Try: tidemark destination list"
