"""What a converted model rests on besides its source: config values the tables assumed (a
producer's default, a translated value, a guess) and what the user declared (`--set`,
`--config`, `--patch`), each recorded with where it came from and why, so every report can say
it."""

from .assumptions import Assumption, Kind, assumption_lines, declared, defaults_applied
from .patches import Patch, parse_patch, patch_jobs, resolve_patches
from .settings import check_settings, parse_settings, use_config_file

__all__ = [
    "Assumption",
    "Kind",
    "Patch",
    "assumption_lines",
    "check_settings",
    "declared",
    "defaults_applied",
    "parse_patch",
    "parse_settings",
    "patch_jobs",
    "resolve_patches",
    "use_config_file",
]
