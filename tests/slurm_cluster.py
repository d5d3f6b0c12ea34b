"""A throwaway single-node Slurm cluster (munged, slurmctld, slurmd) for the Slurm tests.

Runs as root without systemd: the daemons are started in the foreground as child processes and
stopped by PID. The node declares more CPUs than the machine has (``config_overrides``) and two
fake GPUs (character devices, as gres.conf refuses plain files) in a ``gpu`` partition.
``slurm.conf`` must be at ``/etc/slurm`` (the plugin's job step drops ``SLURM_CONF``): an
existing one is backed up and restored.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("i2i.tests.slurm")

ETC = Path("/etc/slurm")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")
CPUS = 8
MEMORY_MB = 16000
GPUS = 2
MIN_JOB_AGE = 300
START_TIMEOUT = 60.0

SLURM_CONF = """\
ClusterName=i2itest
SlurmctldHost={node}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge={min_job_age}
DefMemPerCPU=500
KillWait=5
GresTypes=gpu
NodeName={node} CPUs={cpus} RealMemory={memory} Gres=gpu:{gpus} State=UNKNOWN
PartitionName=cpu Nodes={node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={node} MaxTime=INFINITE State=UP
"""

GRES_CONF = "NodeName={node} Name=gpu File={root}/dev/gpu[0-{last}]\n"


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its node name and the folder of its state and logs."""

    node: str
    root: Path

    def jobs(self) -> list[str]:
        """IDs of the jobs Slurm still knows as pending or running."""
        result = subprocess.run(
            [
                "squeue",
                "--noheader",
                "--states=PENDING,RUNNING,CONFIGURING,COMPLETING",
                "--format=%i",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.split()

    def logs(self) -> str:
        """The tail of the daemons' logs, for failure messages."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "munged.log"):
            path = self.root / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-20:]
                parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(parts)


def skip_reason() -> str | None:
    """Why a local cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to run slurmctld, slurmd and munged"
    missing = [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name) is None]
    for name in DAEMONS:
        if shutil.which(name) is None and Path("/usr/sbin", name).exists():
            missing.remove(name)
    if missing:
        return f"missing {', '.join(missing)} (apt-get install -y slurm-wlm munge)"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _ensure_munge_key() -> None:
    """Create the munge key when there is none (owned by munge, mode 0400)."""
    if MUNGE_KEY.exists():
        return
    MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
    MUNGE_KEY.write_bytes(os.urandom(128))
    MUNGE_KEY.chmod(0o400)
    with contextlib.suppress(KeyError, LookupError):
        shutil.chown(MUNGE_KEY, "munge", "munge")


def _fake_gpus(folder: Path) -> None:
    """Character devices (like /dev/null) that gres.conf accepts as GPUs."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(GPUS):
        path = folder / f"gpu{index}"
        if not path.exists():
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))


def _write_config(node: str, root: Path) -> None:
    values = {"node": node, "root": root, "cpus": CPUS, "memory": MEMORY_MB, "gpus": GPUS}
    ETC.mkdir(parents=True, exist_ok=True)
    (ETC / "slurm.conf").write_text(SLURM_CONF.format(min_job_age=MIN_JOB_AGE, **values))
    (ETC / "gres.conf").write_text(GRES_CONF.format(node=node, root=root, last=GPUS - 1))


@contextlib.contextmanager
def _config_installed(node: str, root: Path) -> Iterator[None]:
    """Our slurm.conf and gres.conf in /etc/slurm while inside; the previous ones after."""
    backups = {}
    for name in ("slurm.conf", "gres.conf"):
        path = ETC / name
        if path.exists():
            backups[name] = path.read_bytes()
    try:
        _write_config(node, root)
        yield
    finally:
        for name in ("slurm.conf", "gres.conf"):
            path = ETC / name
            if name in backups:
                path.write_bytes(backups[name])
            else:
                path.unlink(missing_ok=True)


def _spawn(command: list[str], logfile: Path) -> subprocess.Popen:
    with logfile.open("ab") as output:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )


def _stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: only this process, by its PID."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def _munge_works() -> bool:
    if not MUNGE_SOCKET.exists():
        return False
    munge = subprocess.run(["munge", "-n"], capture_output=True, check=False)
    if munge.returncode != 0:
        return False
    unmunge = subprocess.run(["unmunge"], input=munge.stdout, capture_output=True, check=False)
    return unmunge.returncode == 0


def _wait_until(check, timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}\n{cluster.logs()}")
        time.sleep(0.5)


def _node_ready() -> bool:
    result = subprocess.run(
        ["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, check=False
    )
    states = result.stdout.split()
    return result.returncode == 0 and bool(states) and all(s == "idle" for s in states)


def cancel_all(cluster: Cluster, timeout: float = 30.0) -> None:
    """Cancel every job and wait until the queue is empty."""
    subprocess.run(["scancel", "--full", "--user", "root"], check=False)
    _wait_until(lambda: not cluster.jobs(), timeout, "an empty queue", cluster)


@contextlib.contextmanager
def running_cluster(root: Path) -> Iterator[Cluster]:
    """Start munged (unless one answers), slurmctld and slurmd; stop them on exit."""
    node = socket.gethostname().split(".")[0]
    root = root.resolve()
    for folder in ("state", "spool"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    _fake_gpus(root / "dev")
    cluster = Cluster(node, root)
    started: list[subprocess.Popen] = []
    with _config_installed(node, root):
        try:
            if not _munge_works():
                _ensure_munge_key()
                MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
                munged = [
                    _binary("munged"),
                    "--foreground",
                    "--force",
                    f"--log-file={root}/munged.log",
                    f"--pid-file={root}/munged.pid",
                    f"--seed-file={root}/munged.seed",
                ]
                started.append(_spawn(munged, root / "munged.out"))
                _wait_until(_munge_works, START_TIMEOUT, "munged", cluster)
            started.append(_spawn([_binary("slurmctld"), "-D", "-i"], root / "slurmctld.out"))
            started.append(_spawn([_binary("slurmd"), "-D"], root / "slurmd.out"))
            _wait_until(_node_ready, START_TIMEOUT, "an idle node", cluster)
            log.info("Slurm cluster up on node %s (state in %s)", node, root)
            yield cluster
        finally:
            with contextlib.suppress(Exception):
                if any(p.poll() is None for p in started[-2:]):
                    cancel_all(cluster)
            for process in reversed(started):
                _stop(process)
            log.info("Slurm cluster on node %s stopped", node)
