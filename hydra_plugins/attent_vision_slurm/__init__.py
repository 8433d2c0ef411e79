"""attent-vision's SLURM launcher: hydra-submitit-launcher's, with a check of the cluster before it submits, one
line (not a traceback) when the cluster cannot take the sweep, and a sweep that waits for every job even when one
ends without a result.

conf/shared/hydra/launcher/slurm_1gpu.yaml, and the presets built on it, name ``SlurmLauncher`` as their
``_target_``. A Hydra plugin must live in the ``hydra_plugins`` namespace package, hence this module; what it
does is attent_vision/cli/slurm_checks.py and slurm_jobs.py. Jobs run exactly as with hydra-submitit-launcher's
own launcher: this object is what submitit pickles and calls in each job (``__call__``), and what it resubmits on
requeue (``checkpoint``).
"""

import sys

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SubmititSlurmLauncher
except ImportError:  # the slurm extra is not installed: the entry points say what to install before Hydra gets here
    _SubmititSlurmLauncher = None

if _SubmititSlurmLauncher is not None:

    class SlurmLauncher(_SubmititSlurmLauncher):
        def launch(self, job_overrides, initial_job_idx):
            from attent_vision.cli.slurm_checks import SlurmUnavailable
            from attent_vision.cli.slurm_jobs import submit_and_wait

            try:
                return submit_and_wait(self, job_overrides, initial_job_idx)
            except SlurmUnavailable as e:
                print(f"error: {e}", file=sys.stderr)
                sys.exit(e.exit_code)  # SystemExit passes through Hydra, which reports only Exception
