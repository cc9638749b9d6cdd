#!/usr/bin/env bash
# A single-node Slurm cluster with accounting (slurmdbd + MariaDB) and eight fake A100 GPUs, for
# tests/workflow/test_slurm.py and CI: Debian, as root, no systemd. Idempotent: rerun it to (re)start
# whatever is not running; a finished set-up returns in a second.
#
#   sudo scripts/install_slurm.sh            # then: sinfo; sacct; tests/workflow/test_slurm.py
#
# Environment: SLURM_TEST_CLUSTER (definemed), SLURM_TEST_ACCOUNT (definemed),
# SLURM_TEST_PARTITION (gpu), SLURM_TEST_CPUS (8), SLURM_TEST_MEM_MB (16000).
# CPUs and memory are what the node announces (config_overrides), not what the machine has:
# the test's jobs are small, and several of them must run side by side.
set -euo pipefail

CLUSTER=${SLURM_TEST_CLUSTER:-definemed}
ACCOUNT=${SLURM_TEST_ACCOUNT:-definemed}
PARTITION=${SLURM_TEST_PARTITION:-gpu}
CPUS=${SLURM_TEST_CPUS:-8}
MEM_MB=${SLURM_TEST_MEM_MB:-16000}
FAKE_GPU_DIR=/var/lib/definemed-fake-gpu
DB_PASSWORD=definemed-slurm   # local socket only; the database holds test accounting
HOST=$(hostname -s)

log() { echo "install_slurm: $*" >&2; }
wait_for() { # seconds, description, command...
    local n=$1 what=$2
    shift 2
    for _ in $(seq "$n"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    log "timed out waiting for $what"
    return 1
}
running() { pgrep -x "$1" >/dev/null; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root"
    exit 1
fi

# 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null \
    || ! command -v mysqld_safe >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm slurmdbd mariadb-server munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd mariadb-server munge \
        procps >/dev/null
fi
SLURM_ETC=/etc/slurm
[ -d /etc/slurm-llnl ] && [ ! -d /etc/slurm ] && SLURM_ETC=/etc/slurm-llnl
mkdir -p "$SLURM_ETC" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm \
    /run/munge /run/mysqld "$FAKE_GPU_DIR"

# 2. munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating the munge key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! running munged; then
    log "starting munged"
    if id munge >/dev/null 2>&1; then
        su -s /bin/sh munge -c "munged --force" || munged --force
    else
        munged --force
    fi
fi
wait_for 20 munge sh -c "munge -n | unmunge"

# 3. MariaDB and the accounting database
chown mysql:mysql /run/mysqld
if ! mysqladmin ping >/dev/null 2>&1; then
    log "starting mariadb"
    setsid nohup mysqld_safe --user=mysql >/var/log/slurm/mysqld_safe.log 2>&1 </dev/null &
    wait_for 60 mariadb mysqladmin ping
fi
mysql -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

# 4. configuration (rewritten each time: the file is the truth)
for i in 0 1 2 3 4 5 6 7; do touch "$FAKE_GPU_DIR/fakegpu$i"; done
cat >"$SLURM_ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
EOF
chmod 600 "$SLURM_ETC/slurmdbd.conf"
cat >"$SLURM_ETC/slurm.conf" <<EOF
# written by scripts/install_slurm.sh: a single-node test cluster with fake A100s
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
GresTypes=gpu
# quick turnaround for tests: a job over its time limit gets SIGTERM, then SIGKILL 5 s later
KillWait=5
MinJobAge=30
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:a100:8 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$SLURM_ETC/gres.conf" <<EOF
AutoDetect=off
NodeName=$HOST Name=gpu Type=a100 File=$FAKE_GPU_DIR/fakegpu[0-7]
EOF

# 5. daemons
if ! running slurmdbd; then
    log "starting slurmdbd"
    slurmdbd
fi
wait_for 60 slurmdbd sacctmgr -n show cluster
if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi
if ! sacctmgr -n -P show account format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description=tests organization=definemed >/dev/null
fi
if ! sacctmgr -n -P show assoc user=root account="$ACCOUNT" format=user | grep -qx root; then
    sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
fi
if ! running slurmctld; then
    log "starting slurmctld"
    slurmctld
else
    scontrol reconfigure
fi
if ! running slurmd; then
    log "starting slurmd"
    slurmd
fi
wait_for 60 "node $HOST idle" sh -c "sinfo -h -n $HOST -o %T | grep -Eq '^(idle|mixed|allocated)'"
# a node drained by an earlier set-up (e.g. before the fake GPU files existed) comes back
if sinfo -h -n "$HOST" -o %T | grep -Eq 'drain|down'; then
    scontrol update nodename="$HOST" state=resume
fi
log "ready: cluster $CLUSTER, partition $PARTITION, account $ACCOUNT, node $HOST ($CPUS CPUs, 8 fake a100)"
sinfo -N -o "%N %T %c %m %G"
