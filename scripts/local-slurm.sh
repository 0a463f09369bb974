#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for proving the cluster path (`hydra/launcher=slurm`).
#
#   scripts/local-slurm.sh install  # only install the Debian packages if missing
#   scripts/local-slurm.sh start    # install if missing, configure, start, wait until the node is idle
#   scripts/local-slurm.sh status   # the daemons and `sinfo` (exit 0 running, 3 not running)
#   scripts/local-slurm.sh stop     # cancel its jobs, stop exactly the daemons it started
#
# Everything lives in its own folder, $FENTSIM_SLURM_DIR (default /tmp/fentsim-slurm): slurm.conf,
# its own munge key and socket, state, spool, logs and pid files.  Nothing under /etc is used or
# changed, so a system SLURM or munge on the machine is not touched; `stop` kills only the processes
# named by the pid files in that folder (and checks that their command line names the folder).
# Use the cluster with `export SLURM_CONF=$FENTSIM_SLURM_DIR/slurm.conf` (sinfo, sbatch, fentsim).
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge if missing (needs root and apt-get;
# `apt-get update` once).  Settings: FENTSIM_SLURM_PORT (slurmctld port, default 16817; slurmd
# uses the next one), FENTSIM_SLURM_TIMEOUT (s to wait for the node, default 60).
set -euo pipefail

DIR=$(realpath -m -- "${FENTSIM_SLURM_DIR:-/tmp/fentsim-slurm}")  # absolute: the daemons run from /
PORT=${FENTSIM_SLURM_PORT:-16817}
TIMEOUT=${FENTSIM_SLURM_TIMEOUT:-60}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)
PACKAGES=(slurmctld slurmd slurm-client munge)
export SLURM_CONF=$CONF

say() { echo "local-slurm: $*"; }
die() { echo "local-slurm: error: $*" >&2; exit 1; }

# the last error a daemon logged, without the harmless MPI-plugin ones
last_error() {
    grep -hE 'error:|fatal:' "$1" 2>/dev/null | grep -vE 'pmix|MPI' | tail -n 1 |
        sed -E -e 's/^\[[^]]*\] *//' -e 's/^(error|fatal): *//' -e 's/^/: /' || true
}

# pid of a daemon of ours: from its pid file, alive, and its command line names $DIR
pid_of() {
    local file=$1 pid
    [[ -s $file ]] || return 1
    pid=$(tr -dc 0-9 < "$file")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$DIR" || return 1
    echo "$pid"
}

MUNGE_PID=$DIR/run/munged.pid
CTLD_PID=$DIR/run/slurmctld.pid
SLURMD_PID=$DIR/run/slurmd.pid

install_if_missing() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    if [[ ${#missing[@]} -eq 0 ]]; then
        [[ $1 == verbose ]] && say "installed: $(slurmctld -V) and $(munged --version 2>&1 | head -n 1)"
        return 0
    fi
    mkdir -p "$DIR/log"
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; install them (apt-get install ${PACKAGES[*]}) or run as root"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    say "installing ${PACKAGES[*]} (apt-get)"
    # keep the packages' own services from starting (we run our own daemons from $DIR)
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local log=$DIR/log/apt.log rc=0
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
    } > "$log" 2>&1 || rc=$?
    [[ $made_policy -eq 1 ]] && rm -f "$policy"
    [[ $rc -eq 0 ]] || die "apt-get failed (exit $rc); see $log"
    say "installed: $(slurmctld -V) and $(munged --version 2>&1 | head -n 1)"
}

write_config() {
    local cpus mem
    cpus=$(nproc)
    # RealMemory (MB): free memory less 10 % (and less 512 MB), at least 512
    mem=$(awk '/^MemAvailable:/ {m = int($2 / 1024); m = m - (m / 10 > 512 ? int(m / 10) : 512);
                                  print (m < 512 ? 512 : m)}' /proc/meminfo)
    cat > "$CONF" <<EOF
# Written by scripts/local-slurm.sh: a one-node cluster on $NODE, everything under $DIR.
ClusterName=fentsim-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# no accounting: sacct answers "Slurm accounting storage is disabled"
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MailProg=/bin/true
KillWait=5
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    say "wrote $CONF ($NODE: $cpus CPUs, RealMemory $mem MB, port $PORT)"
}

node_state() {
    sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n 1
}

start() {
    mkdir -p "$DIR"/{log,run,state,spool,munge}
    chmod 755 "$DIR/munge"
    install_if_missing quiet
    local running=0
    pid_of "$MUNGE_PID" >/dev/null && running=$((running + 1))
    pid_of "$CTLD_PID" >/dev/null && running=$((running + 1))
    pid_of "$SLURMD_PID" >/dev/null && running=$((running + 1))
    if [[ $running -eq 3 ]]; then
        say "already running (config $CONF)"
    else
        # a fresh config only when none of our daemons runs on the old one
        [[ $running -eq 0 || ! -s $CONF ]] && write_config
        if ! pid_of "$MUNGE_PID" >/dev/null; then
            if [[ ! -s $DIR/munge/munge.key ]]; then
                dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
                chmod 400 "$DIR/munge/munge.key"
            fi
            munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
                --pid-file="$MUNGE_PID" --log-file="$DIR/log/munged.log" \
                --seed-file="$DIR/munge/munged.seed" \
                || die "munged did not start; see $DIR/log/munged.log"
            say "started munged (pid $(pid_of "$MUNGE_PID" || echo '?'))"
        fi
        if ! pid_of "$CTLD_PID" >/dev/null; then
            slurmctld -f "$CONF" ||
                die "slurmctld did not start$(last_error "$DIR/log/slurmctld.log"); see $DIR/log/slurmctld.log"
            wait_for_pid "$CTLD_PID" slurmctld "$DIR/log/slurmctld.log"
            say "started slurmctld (pid $(pid_of "$CTLD_PID"))"
        fi
        if ! pid_of "$SLURMD_PID" >/dev/null; then
            slurmd -f "$CONF" -N "$NODE" ||
                die "slurmd did not start$(last_error "$DIR/log/slurmd.log"); see $DIR/log/slurmd.log"
            wait_for_pid "$SLURMD_PID" slurmd "$DIR/log/slurmd.log"
            say "started slurmd (pid $(pid_of "$SLURMD_PID"))"
        fi
    fi
    local waited=0 state
    while :; do
        state=$(node_state || true)
        case $state in
            idle | mixed | allocated) break ;;
            drained* | draining*)
                # e.g. left drained by an earlier run: give it back
                scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
        esac
        if (( waited >= TIMEOUT )); then
            die "node $NODE not idle after ${TIMEOUT} s (state: ${state:-no answer from slurmctld}); see $DIR/log/slurmctld.log and slurmd.log"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "node $NODE is $state after ${waited} s; use it with: export SLURM_CONF=$CONF"
}

wait_for_pid() {  # the daemons fork: wait up to 10 s for the pid file to name a live process
    local file=$1 name=$2 log=$3
    for _ in $(seq 50); do
        pid_of "$file" >/dev/null && return 0
        sleep 0.2
    done
    die "$name did not start$(last_error "$log"); see $log (scripts/local-slurm.sh stop cleans up)"
}

stop_one() {
    local file=$1 name=$2 pid
    if ! pid=$(pid_of "$file"); then
        rm -f "$file"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        [[ -e /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -e /proc/$pid ]]; then
        kill -KILL "$pid" 2>/dev/null || true
        say "stopped $name (pid $pid, killed after 10 s)"
    else
        say "stopped $name (pid $pid)"
    fi
    rm -f "$file"
}

stop() {
    local any=0
    for f in "$MUNGE_PID" "$CTLD_PID" "$SLURMD_PID"; do
        pid_of "$f" >/dev/null && any=1
    done
    if [[ $any -eq 0 ]]; then
        say "not running (nothing to stop in $DIR)"
        return 0
    fi
    if pid_of "$CTLD_PID" >/dev/null; then
        local jobs
        jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)
        if [[ -n ${jobs// /} ]]; then
            say "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 20); do
                [[ -z $(squeue -h -o '%A' 2>/dev/null) ]] && break
                sleep 0.5
            done
        fi
    fi
    # the two SLURM daemons together (each takes a second or two to shut down), then munge
    stop_one "$SLURMD_PID" slurmd &
    stop_one "$CTLD_PID" slurmctld &
    wait
    stop_one "$MUNGE_PID" munged
}

status() {
    local n=0 pid
    for pair in "munged:$MUNGE_PID" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
        if pid=$(pid_of "${pair#*:}"); then
            say "${pair%%:*} running (pid $pid)"
            n=$((n + 1))
        else
            say "${pair%%:*} not running"
        fi
    done
    if [[ $n -eq 3 ]]; then
        sinfo -N -o '%N %T %c %m %P' 2>&1 | sed 's/^/  /'
        say "running; export SLURM_CONF=$CONF"
        return 0
    fi
    return 3
}

case ${1:-} in
    install) install_if_missing verbose ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 install|start|stop|status   (folder: \$FENTSIM_SLURM_DIR, now $DIR)" >&2; exit 2 ;;
esac
