"""`sfi-bench weights --script FILE`: a shell script that fetches every network into one folder elsewhere."""

from __future__ import annotations

import re
import shlex

from sfi_core.weights import WEIGHTS, effective_url

SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")

HEADER = """#!/usr/bin/env bash
# Fetches the networks of the sfi weights table into one folder, for a machine that reaches the Hub and the
# download sites only from elsewhere. Run it there:   bash {script} DIR
# then copy DIR to the machine that runs sfi and check and record every file with
#   sfi-bench weights --fetch --all --weights-dir DIR     (or set SFI_WEIGHTS_DIR=DIR)
# Needs curl and the `hf` command (pip install huggingface_hub); honours HF_ENDPOINT and HF_TOKEN.
set -euo pipefail
DIR="${{1:-sfi-weights}}"
HF="${{HF:-hf}}"
"""


def entry_lines(name: str) -> list[str]:
    """The script's lines for one entry: "$DIR/<name>/<file>" is where `--weights-dir DIR` looks first."""
    spec = WEIGHTS[name]
    if not (SAFE_NAME.fullmatch(spec.name) and SAFE_NAME.fullmatch(spec.filename)):
        raise ValueError(
            f"weights name or file {spec.name!r}/{spec.filename!r} is not safe in a shell script"
        )
    folder = f'"$DIR/{spec.name}"'
    if spec.url:
        url = shlex.quote(effective_url(spec))
        return [f'mkdir -p {folder} && curl -fL --retry 3 -C - -o "$DIR/{spec.name}/{spec.filename}" {url}']
    if spec.hf_repo:
        files = "" if spec.folder else f" {shlex.quote(spec.filename)}"
        return [f'"$HF" download {shlex.quote(spec.hf_repo)}{files} --local-dir {folder}']
    return []


def fetch_script(script_name: str) -> str:
    """Every fetchable entry; the ones only fetched when named (the Wan 14B folders) are left commented out."""
    lines = [HEADER.format(script=script_name)]
    for spec in WEIGHTS.values():
        body = entry_lines(spec.name)
        if not body:
            continue
        if spec.named_only:
            lines.append(f"# {spec.name}: {spec.purpose}. Tens of GB: uncomment to fetch it too.")
            lines += [f"# {line}" for line in body]
        else:
            lines.append(f"# {spec.name}: {spec.purpose}")
            lines += body
    lines.append('echo "sfi weights fetched into $DIR"')
    return "\n".join(lines) + "\n"
