#!/usr/bin/env bash
# Start the CPT script with its launcher: once per node of a multi-node Slurm job, else as is.
#
#   scripts/launch_cpt.sh <processes per node> <launcher words...> scripts/train_cpt.py <args...>
#
# Outside Slurm, or in a Slurm job of one task, the command runs unchanged (the miniature's
# `python scripts/train_cpt.py ...`). In a Slurm job of N > 1 tasks (rule train_cpt on the Slurm
# profile: one task per node, the plugin's `mpi` route), the batch step starts one `srun` task per
# node, and each task runs the launcher with its machine rank (SLURM_PROCID), the machine count
# (SLURM_NTASKS) and the rendezvous on the allocation's first node (scontrol show hostnames).
# Launchers understood: `accelerate launch ...` and `torchrun ...`; anything else gets the
# torch.distributed environment (MASTER_ADDR, MASTER_PORT, NODE_RANK, NNODES) only.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 <processes per node> <launcher...> <script.py> <args...>" >&2
    exit 2
fi
per_node=$1
shift

# the plugin's jobstep removes the allocation's SLURM_* variables (all but SLURM_JOB_ID) before it
# runs the job's shell: read the allocation back from the controller
if [ -n "${SLURM_JOB_ID:-}" ] && [ -z "${DEFINEMED_LAUNCH_STEP:-}" ]; then
    job=$(scontrol show job -o "${SLURM_JOB_ID}")
    field() { sed -n "s|.* $1=\([^ ]*\).*|\1|p" <<<"$job"; }
    # the job's end: training writes a checkpoint and stops cpt.save_before_time_limit_minutes
    # before it (definemed/training/cpt.py slurm_deadline), so a resubmission loses minutes, not hours
    if end=$(date -d "$(field EndTime)" +%s 2>/dev/null); then
        export DEFINEMED_JOB_END_TIME=$end
    fi
    tasks=$(field NumTasks)
    if [ "${tasks:-1}" -gt 1 ]; then
        # the batch step: one task per node of the allocation, rendezvous on the first node
        nodelist=$(field NodeList)
        head=$(scontrol show hostnames "$nodelist" | head -n 1)
        export DEFINEMED_LAUNCH_STEP=1 DEFINEMED_MAIN_ADDR=$head
        export DEFINEMED_MAIN_PORT=${DEFINEMED_MAIN_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
        echo "launch_cpt: ${tasks} tasks on ${nodelist}, rendezvous ${head}:${DEFINEMED_MAIN_PORT}" >&2
        exec srun --ntasks="$tasks" --nodes="$(field NumNodes)" --cpus-per-task="$(field CPUs/Task)" \
            --kill-on-bad-exit=1 "$0" "$per_node" "$@"
    fi
fi

# the launcher's words are everything before the first *.py argument
launcher=()
while [ $# -gt 0 ] && [[ $1 != *.py ]]; do
    launcher+=("$1")
    shift
done

if [ -n "${DEFINEMED_LAUNCH_STEP:-}" ]; then
    machines=${SLURM_NTASKS}
    rank=${SLURM_PROCID}
    addr=${DEFINEMED_MAIN_ADDR}
    port=${DEFINEMED_MAIN_PORT}
    echo "launch_cpt: machine ${rank} of ${machines} on $(hostname), ${per_node} processes" >&2
    export MASTER_ADDR=$addr MASTER_PORT=$port NODE_RANK=$rank NNODES=$machines
    if [ "${launcher[0]:-}" = accelerate ] && [ "${launcher[1]:-}" = launch ]; then
        launcher+=(--num_machines "$machines" --machine_rank "$rank" --main_process_ip "$addr"
            --main_process_port "$port" --num_processes $((machines * per_node)))
    elif [ "${launcher[0]:-}" = torchrun ]; then
        launcher+=(--nnodes "$machines" --node_rank "$rank" --master_addr "$addr"
            --master_port "$port" --nproc_per_node "$per_node")
    fi
fi
# SIGUSR1 asks the training processes for a checkpoint (definemed/training/cpt.py
# save_before_time_limit_callback; `scancel --signal=USR1` signals every process of a step): the
# launchers ignore it, or its default action would end them; the training processes handle it
trap '' USR1
exec "${launcher[@]}" "$@"
