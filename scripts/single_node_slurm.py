"""A real single-node SLURM cluster in a folder: for trying a sweep, requeue or a multi-task job through a real
scheduler on one machine (docs/slurm.md), and for the ``slurm`` tests (tests/test_slurm.py, the session fixture
``slurm_cluster``).

    sudo bash scripts/install_slurm.sh            # Debian's packages, once
    sudo python scripts/single_node_slurm.py /tmp/attent-slurm      # runs until Ctrl-C, then stops the daemons
    export SLURM_CONF=/tmp/attent-slurm/slurm.conf                   # in another shell
    python train.py -m debug=smoke selection=none,soft hydra/launcher=slurm_local

munged, slurmctld and slurmd (Debian's ``munge``, ``slurmctld``, ``slurmd`` and ``slurm-client`` packages) run as
root (slurmd starts jobs as their user) from a generated ``slurm.conf``: one node with this machine's CPUs, in one
partition, ``local`` (the partition of conf/shared/hydra/launcher/slurm_local.yaml). Everything they write (munge
key and socket, state, spool, logs, pid files) stays in the folder, and ``stop`` ends exactly the daemons ``start``
started, by pid: a cluster or munged the machine already runs is never touched. Clients (sbatch, squeue, scontrol,
and submitit through them) find it through ``SLURM_CONF``.

Choices, each for a reason:
- no cgroups (``proctrack/linuxproc``; ``task/affinity`` binds each task to the CPUs it was given, so that torch
  starts one thread per allocated CPU instead of one per CPU of the machine), no accounting (no slurmdbd or database:
  ``sacct`` fails, and submitit, which polls it, logs "Bypassing sacct error" while it waits, harmlessly);
- free TCP ports on 127.0.0.1, and the node named after this host (slurmd refuses a node name that is not its own);
- ``EnforcePartLimits=ALL``: sbatch refuses a job the node can never run (as most clusters do) instead of queueing it
  for ever;
- a requeued job may start again after 5 s (``cred_expire``, default 120 s), the scheduler looks every second
  (``sched_interval``, default 60 s), and ``KillWait`` is 1 s (default 30 s): SIGKILL follows the SIGTERM of
  ``scontrol requeue`` or ``scancel`` after 1 s. Time limits are still checked every 30 s (fixed in slurmctld).

docs/slurm.md ("A cluster on one workstation") shows the configuration this writes, to adapt by hand.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PARTITION = "local"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "srun", "scancel")
CRED_EXPIRE_S = 5  # a requeued job waits this long before it may start again (SLURM's default: 120 s)
KILL_WAIT_S = 1  # SIGTERM -> SIGKILL when a job is requeued or cancelled (SLURM's default: 30 s)


def missing_programs() -> list[str]:
    """The SLURM and munge programs not on PATH (they live in /usr/sbin, which a user's PATH may lack)."""
    return [name for name in (*DAEMONS, *CLIENTS) if find_program(name) is None]


def find_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_memory_mb() -> int:
    with open("/proc/meminfo") as f:
        total_kb = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    return total_kb // 1024 * 9 // 10  # what slurmd finds, less a margin (it refuses a node with less than declared)


def slurm_conf(folder: Path, node: str, cpus: int, memory_mb: int, ctld_port: int, slurmd_port: int) -> str:
    """The whole configuration of the cluster: every path inside ``folder``."""
    return f"""\
ClusterName=attent-single-node
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={pwd.getpwuid(os.geteuid()).pw_name}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder / "munge.socket"},cred_expire={CRED_EXPIRE_S}
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "slurmctld.log"}
SlurmdLogFile={folder / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
EnforcePartLimits=ALL
ReturnToService=2
KillWait={KILL_WAIT_S}
MinJobAge=600
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
    """``start()`` brings the cluster up and waits until its node is idle; ``stop()`` ends the daemons it started.
    ``env``: what a client needs to find it (``SLURM_CONF``)."""

    def __init__(self, folder: Path, cpus: int | None = None):
        self.folder = Path(folder)
        self.cpus = cpus or os.cpu_count() or 1
        self.node = socket.gethostname().split(".")[0]
        self.processes: dict[str, subprocess.Popen] = {}
        self.conf = self.folder / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}

    def start(self, timeout_s: float = 60) -> None:
        for sub in ("state", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(slurm_conf(self.folder, self.node, self.cpus, node_memory_mb(), free_port(),
                                        free_port()))
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        try:
            self._spawn("munged", "--foreground", f"--key-file={key}", f"--socket={self.folder / 'munge.socket'}",
                        f"--pid-file={self.folder / 'munged.pid'}", f"--log-file={self.folder / 'munged.log'}",
                        f"--seed-file={self.folder / 'munged.seed'}", "--force")
            self._wait(lambda: (self.folder / "munge.socket").exists(), "munged to open its socket", timeout_s)
            self._spawn("slurmctld", "-D", "-c", "-f", str(self.conf))
            self._spawn("slurmd", "-D", "-N", self.node, "-f", str(self.conf))
            self._wait(self.node_idle, f"node {self.node} to be idle", timeout_s)
        except BaseException:
            self.stop()
            raise

    def node_idle(self) -> bool:
        out = self.client("sinfo", "--noheader", "--nodes", self.node, "--format=%t", check=False)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def client(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster."""
        return subprocess.run([find_program(name), *args], env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=60, check=check)

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.folder / f"{name}.out", "w")
        self.processes[name] = subprocess.Popen([find_program(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                                env={**os.environ, **self.env}, start_new_session=True)
        log.close()

    def _wait(self, ready, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            ended = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
            if ended or time.monotonic() > deadline:
                raise RuntimeError(f"waiting for {what}: " + (f"{ended} exited" if ended else "timed out") +
                                   "\n" + self.logs())
            time.sleep(0.2)

    def logs(self, lines: int = 15) -> str:
        """The last lines of every daemon's log (for a failure message)."""
        out = []
        for path in sorted(self.folder.glob("*.log")) + sorted(self.folder.glob("*.out")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """SIGTERM to each daemon started here (slurmd first: it ends its job steps), SIGKILL after 10 s."""
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def main(argv: list[str]) -> int:
    missing = missing_programs()
    if missing:
        print(f"not installed: {', '.join(missing)}; run: sudo bash scripts/install_slurm.sh", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("slurmd runs its jobs as root: run this with sudo", file=sys.stderr)
        return 2
    cluster = LocalSlurm(Path(argv[0] if argv else "/tmp/attent-slurm").resolve())
    cluster.start()
    print(f"SLURM is up: partition {PARTITION}, node {cluster.node} with {cluster.cpus} CPUs. In another shell:\n"
          f"  export SLURM_CONF={cluster.conf}\n"
          "  python train.py -m debug=smoke selection=none,soft hydra/launcher=slurm_local\n"
          "Ctrl-C stops the cluster (munged, slurmctld, slurmd).", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
