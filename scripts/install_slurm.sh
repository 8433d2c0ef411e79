#!/usr/bin/env bash
# Installs a single-node SLURM's programs (Debian/Ubuntu packages slurmctld, slurmd, slurm-client, munge) for the
# slurm tests (tests/test_slurm.py), which start their own cluster from a generated slurm.conf. Part of the README's
# test command and of .ci/run. Never fails: where SLURM is installed already this does nothing, and where it cannot
# install (not root, no apt-get, no network) it says why in one line and the slurm tests are skipped, saying so.
# Starts no daemon: Debian's packages do not start services without systemd, and the tests start their own.
set -u
packages=(slurmctld slurmd slurm-client munge)
if command -v sbatch >/dev/null && [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] \
    && [ -x /usr/sbin/munged ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install_slurm.sh: SLURM not installed (needs root and apt-get); the slurm tests will be skipped" >&2
    exit 0
fi
log=$(mktemp)
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine: update them only when the first try fails.
if apt-get install -y -q "${packages[@]}" >"$log" 2>&1 \
    || { apt-get update -q >>"$log" 2>&1 && apt-get install -y -q "${packages[@]}" >>"$log" 2>&1; }; then
    echo "install_slurm.sh: installed ${packages[*]} for the slurm tests" >&2
else
    echo "install_slurm.sh: could not install ${packages[*]} ($(tail -n 1 "$log")); the slurm tests will be skipped" >&2
fi
rm -f "$log"
exit 0
