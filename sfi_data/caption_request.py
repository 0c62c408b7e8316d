"""One caption request: the versioned prompt, the sampled frames as JPEG data URLs, the chat-completions body."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfi_core.constants import DEFAULT_READER
from sfi_data.config_dataset import DEFAULT_PROMPT, CaptionConfig


@dataclass
class CaptionPrompt:
    version: str
    system: str
    user: str

    def render(self, frames_sent: int, num_frames: int, duration_s: float) -> str:
        return self.user.format(frames_sent=frames_sent, num_frames=num_frames, duration_s=duration_s)


def load_prompt(path: str | Path) -> CaptionPrompt:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"caption prompt {path} not found; the default is {DEFAULT_PROMPT}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a prompt file is a mapping with version, system and user")
    missing = [key for key in ("version", "system", "user") if not data.get(key)]
    if missing:
        raise ValueError(f"{path}: the prompt file needs {missing} (see {DEFAULT_PROMPT})")
    return CaptionPrompt(version=str(data["version"]), system=str(data["system"]), user=str(data["user"]))


def sample_indices(num_frames: int, count: int) -> list[int]:
    """`count` evenly spaced frame indices of a clip, always its first and its last frame."""
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames}")
    if count < 2:
        raise ValueError(f"send at least 2 frames (first and last), got {count}")
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, min(count, num_frames))})


def jpeg_data_urls(frames: np.ndarray, max_side: int, quality: int = 90) -> list[str]:
    """uint8 RGB frames (T, H, W, 3) to base64 JPEG data URLs, longest side at most `max_side`."""
    import cv2

    height, width = frames.shape[1:3]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    urls = []
    for frame in frames:
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else frame
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise ValueError("JPEG encoding failed")
        urls.append("data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii"))
    return urls


def build_request(
    images: list[str], prompt: CaptionPrompt, config: CaptionConfig, num_frames: int, duration_s: float
) -> dict:
    """A chat-completions body: the frames as image_url parts in order, each labelled, then the instruction."""
    content: list[dict] = []
    for number, url in enumerate(images, start=1):
        label = "first frame" if number == 1 else "last frame" if number == len(images) else f"frame {number}"
        content.append({"type": "text", "text": f"Frame {number} ({label}):"})
        content.append({"type": "image_url", "image_url": {"url": url}})
    content.append({"type": "text", "text": prompt.render(len(images), num_frames, duration_s)})
    return {
        "model": config.model,
        "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}],
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
    }


def clip_request(root: Path, row: dict, prompt: CaptionPrompt, config: CaptionConfig) -> dict:
    """Decode the sampled frames of one clip and build its request (blocking: runs in a thread)."""
    from sfi_core.video import read_frames

    num_frames = int(row["num_frames"])
    indices = sample_indices(num_frames, config.frames)
    frames = read_frames(root / row["clip_path"], indices, reader=config.reader or DEFAULT_READER)
    duration_s = num_frames / float(row["fps"]) if row.get("fps") else 0.0
    return build_request(
        jpeg_data_urls(frames, config.max_side, config.jpeg_quality), prompt, config, num_frames, duration_s
    )
