#!/bin/sh
# apt_install.sh PACKAGE WHAT: install a Debian package the tests need (as root, or through
# sudo without a password), refreshing the package lists once if the first try fails. Never
# fails the build: where it cannot install, it says loudly that WHAT will be skipped.
package="$1"
what="$2"
echo "installing $package (Debian) for $what"
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then apt=""; else apt="sudo -n"; fi
$apt apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1 ||
  { $apt apt-get update >/dev/null 2>&1 &&
    $apt apt-get install -y --no-install-recommends "$package" >/dev/null 2>&1; } ||
  echo "*** WARNING: $package could not be installed: $what will be SKIPPED ***"
exit 0
