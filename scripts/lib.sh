# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/demo. Source it; do not run it.
#
# It sets TERN_ROOT (the source tree, whatever the caller's cwd) and provides:
#   tern_say TEXT...            a visible step heading
#   tern_die TEXT...            print an error and exit 1
#   tern_install_deps           apt-get install the build and test packages
#   tern_ensure_user            create the unprivileged `tern` system user
#   tern_build DIR CC [OPT...]  configure (if needed) and build one tree

# The Debian 12 packages that building and testing Tern needs. The only list:
# scripts/test and scripts/demo both install from it.
TERN_PACKAGES=(
	meson ninja-build pkg-config gcc clang libclang-rt-14-dev
	libuv1-dev libsqlite3-dev libssl-dev libpam0g-dev libinih-dev
	libcrypt-dev zlib1g-dev libcmocka-dev python3-pytest openssl
	postfix swaks
	fetchmail getmail6 curl isync offlineimap3
)

# The user the daemons drop to (mail_user in tern.conf).
TERN_USER=tern

# Debian's own tools, whatever comes first in PATH (pyenv and the like).
MESON=/usr/bin/meson
NINJA=/usr/bin/ninja
# shellcheck disable=SC2034 # used by the scripts that source this file
PY=/usr/bin/python3

TERN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

tern_say() {
	printf '\n==> %s\n' "$*"
}

tern_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Install whatever in TERN_PACKAGES is missing. A machine that has them all
# does not call apt at all.
tern_install_deps() {
	local p missing=()
	for p in "${TERN_PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
			missing+=("$p")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	tern_say "Installing missing packages: ${missing[*]}"
	[ "$(id -u)" -eq 0 ] || tern_die "these packages are missing and installing them needs root: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# The Postfix tests run a private instance: keep the package from
	# writing /etc/postfix/main.cf and starting a system MTA on port 25.
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections || tern_die "debconf-set-selections failed"
	apt-get update || tern_die "apt-get update failed"
	apt-get install -y "${missing[@]}" ||
		tern_die "apt-get install failed"
}

# The daemons start as root and drop to this user.
tern_ensure_user() {
	getent passwd "$TERN_USER" >/dev/null && return 0
	[ "$(id -u)" -eq 0 ] || tern_die "the system user '$TERN_USER' is missing and creating it needs root"
	tern_say "Creating the system user '$TERN_USER'"
	useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$TERN_USER" ||
		tern_die "useradd $TERN_USER failed"
}

# tern_build DIR CC [MESON_OPTION...]: configure DIR (relative to TERN_ROOT)
# with compiler CC, or apply the options to an existing tree, then build it.
# A tree that cannot be reconfigured is set up anew. Returns non-zero if the
# build fails.
tern_build() {
	local dir=$1 cc=$2
	shift 2
	(
		cd "$TERN_ROOT" || exit 1
		if [ -f "$dir/meson-private/coredata.dat" ] &&
			"$MESON" configure "$dir" "$@" >/dev/null 2>&1; then
			"$NINJA" -C "$dir"
			exit $?
		fi
		if ! CC=$cc "$MESON" setup "$dir" "$@"; then
			[ -d "$dir" ] || exit 1
			echo "meson setup failed; trying again with --wipe"
			CC=$cc "$MESON" setup --wipe "$dir" "$@" || exit 1
		fi
		"$NINJA" -C "$dir"
	)
}
