"""Content categories (paper Fig. 3a): the keyword taxonomy on caption-like sentences, the
`categorize` stage (taxonomy and OpenAI-protocol server, faults and resume), the card and the split."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sfi_core.categories import NAMES, OTHER, TAXONOMY_VERSION, categorize
from sfi_data.testing.toy_dataset import TOY_CAPTIONS, build_toy_dataset, write_toy_captions

# Sentences as Qwen2.5-VL writes them (long, subject first, setting and camera after).
CAPTIONS = [
    (
        "A golden retriever runs across a grassy park, chasing a ball thrown by its owner, trees behind.",
        "animals",
    ),
    ("Two children play with a puppy on a sandy beach while small waves roll in.", "animals"),
    ("A flock of birds flies low over a calm lake at sunrise, reflected in the water.", "animals"),
    ("The video shows a man in a blue jacket walking along a busy city street at night.", "people"),
    ("A close-up of a young woman smiling and talking to the camera, her hair moving slightly.", "people"),
    ("A red sports car speeds along a winding mountain road, the camera following from behind.", "vehicles"),
    ("A freight train crosses a steel bridge over a river; the camera is static.", "vehicles"),
    ("A skateboarder performs a kickflip at a concrete skate park under a clear blue sky.", "sports"),
    ("Players in red jerseys pass the football across the pitch in a crowded stadium.", "sports"),
    ("Close-up of a chef slicing fresh vegetables on a wooden cutting board.", "food"),
    ("Aerial view of a waterfall cascading into a turquoise lake surrounded by pine forest.", "nature"),
    ("Time-lapse of clouds moving over a city skyline at sunset, skyscrapers glowing orange.", "city"),
    ("The camera pans slowly across an empty office with desks, chairs and computer monitors.", "indoor"),
    ("An animated cartoon rabbit hops through a colorful forest with exaggerated movements.", "animation"),
    (
        "Gameplay footage from a video game shows a knight fighting a dragon in a castle courtyard.",
        "animation",
    ),
    (
        "A screen recording of a code editor where a user types Python functions; the text scrolls.",
        "text_screen",
    ),
    ("Slow abstract shapes shift and blend in shades of blue.", OTHER),
]


@pytest.mark.parametrize(("caption", "expected"), CAPTIONS)
def test_the_taxonomy_reads_the_subject_of_caption_like_sentences(caption: str, expected: str) -> None:
    assert categorize(caption) == expected


def test_style_wins_over_content_and_ties_go_to_the_first_mention() -> None:
    assert categorize("An animated dog runs in a park.") == "animation"  # rule 1
    assert categorize("A cat sleeps next to a parked bicycle.") == "animals"  # 2 vs 2: first mention
    assert categorize("A bicycle leans on a wall next to a sleeping cat.") == "vehicles"
    assert categorize("A living room with a sofa.") == "indoor"  # a phrase is one hit
    assert categorize("") == OTHER and categorize(None) == OTHER
    assert categorize("The DOGS bark.") == "animals"  # case and plural


def _dataset(root: Path, num_videos: int = 6) -> list[dict]:
    clips = build_toy_dataset(root, num_videos=num_videos, scales=(5, 9), write_media=False)
    write_toy_captions(root, clips)
    return clips


def test_categorize_writes_one_row_per_captioned_clip_and_resumes(tmp_path: Path) -> None:
    from sfi_data.categorize import CATEGORIES_MANIFEST, run_categorize

    clips = _dataset(tmp_path)
    summary = run_categorize(tmp_path)
    rows = pq.read_table(tmp_path / CATEGORIES_MANIFEST).to_pylist()
    assert sorted(r["clip_id"] for r in rows) == sorted(c["clip_id"] for c in clips)
    assert {r["category_source"] for r in rows} == {TAXONOMY_VERSION}
    assert summary.counts == {
        "animals": 2,
        "vehicles": 2,
        "nature": 2,
        "animation": 2,
        "people": 2,
        "city": 2,
    }
    again = run_categorize(tmp_path)
    assert again.skipped == len(clips) and again.counts == summary.counts


def test_a_new_caption_is_categorized_again(tmp_path: Path) -> None:
    from sfi_data.categorize import CATEGORIES_MANIFEST, run_categorize

    clips = _dataset(tmp_path, num_videos=2)
    run_categorize(tmp_path)
    write_toy_captions(tmp_path, clips, captions=("A man reads a newspaper.", TOY_CAPTIONS[1]))
    run_categorize(tmp_path)
    rows = {r["clip_id"]: r["category"] for r in pq.read_table(tmp_path / CATEGORIES_MANIFEST).to_pylist()}
    assert rows == {
        "vid0000_f05": "people",
        "vid0000_f09": "people",
        "vid0001_f05": "vehicles",
        "vid0001_f09": "vehicles",
    }


def test_categorize_with_a_server_handles_faults_and_retries_what_failed(tmp_path: Path) -> None:
    from sfi_data.categorize import CATEGORIES_MANIFEST, run_categorize
    from sfi_data.config_dataset import CategorizeConfig
    from sfi_data.testing.fake_vllm import FakeVLLMServer, Faults

    _dataset(tmp_path, num_videos=3)
    asked: list[str] = []

    def answer(texts: list[str]) -> str:
        asked.append(texts[-1])
        if "waterfall" in texts[-1]:
            return "I think this is a landscape."  # names no category: kept as an error row
        return "Animals." if "retriever" in texts[-1] else "vehicles"

    faults = Faults(error_500=2, malformed=1)
    with FakeVLLMServer(model="m", answer=answer, faults=faults) as server:
        config = CategorizeConfig(categorize_with=[server.url], model="m", backoff_base_s=0.01, concurrency=2)
        summary = run_categorize(tmp_path, config, api_key="")
        assert server.stats.outcomes["500"] == 2 and server.stats.outcomes["malformed"] == 1
        assert len(asked) == 6  # one request per clip (retries of a fault resend the same caption)
        rows = {r["clip_id"]: r for r in pq.read_table(tmp_path / CATEGORIES_MANIFEST).to_pylist()}
        assert summary.ok == 4 and summary.failed == 2 and summary.reasons == {"bad_reply": 2}
        assert rows["vid0000_f05"]["category"] == "animals" and rows["vid0001_f09"]["category"] == "vehicles"
        assert rows["vid0002_f05"]["status"] == "error" and "landscape" in rows["vid0002_f05"]["reason"]
        assert {r["category_source"] for r in rows.values()} == {"llm:m"}
        asked.clear()
        server.answer = lambda texts: asked.append(texts[-1]) or "nature"
        retried = run_categorize(tmp_path, config, api_key="")
    assert len(asked) == 2  # only the two clips that failed are asked again
    assert retried.ok == 6 and retried.failed == 0 and retried.skipped == 4


def test_categorize_refuses_to_mix_the_taxonomy_with_a_server(tmp_path: Path) -> None:
    from sfi_core.driver import SettingsChangedError
    from sfi_data.categorize import run_categorize
    from sfi_data.config_dataset import CategorizeConfig

    _dataset(tmp_path, num_videos=1)
    run_categorize(tmp_path)
    with pytest.raises(SettingsChangedError, match="source"):
        run_categorize(tmp_path, CategorizeConfig(categorize_with=["http://127.0.0.1:9/v1"], model="m"))


def test_the_card_shows_the_category_distribution(tmp_path: Path) -> None:
    from sfi_data.categorize import run_categorize
    from sfi_data.stats import write_card

    _dataset(tmp_path)
    run_categorize(tmp_path)
    card = write_card(tmp_path, with_plots=True).read_text()
    section = card.split("## Content categories")[1].split("\n## ")[0]
    for label in ("animals (`animals`)", "vehicles (`vehicles`)", "animation & games (`animation`)"):
        assert f"| {label} | 2 | 16.7% |" in section
    assert "`taxonomy-v1` (12)" in section
    assert (tmp_path / "stats" / "categories.png").stat().st_size > 1000


def test_the_split_carries_the_category_and_can_stratify_by_it(tmp_path: Path) -> None:
    from sfi_data.config_dataset import SplitConfig
    from sfi_data.split import run_split, stratified_counts

    assert stratified_counts({"a": ["1"] * 6, "b": ["1"] * 3, "c": ["1"]}, 5) == {"a": 3, "b": 2, "c": 0}
    clips = build_toy_dataset(tmp_path, num_videos=12, scales=(5, 9), write_media=False)
    # 8 videos of animals, 4 of vehicles: a stratified test set of 3 takes 2 and 1.
    write_toy_captions(tmp_path, clips, captions=(TOY_CAPTIONS[0], TOY_CAPTIONS[0], TOY_CAPTIONS[1]))
    for seed in range(6):
        config = SplitConfig(
            num_videos=3, seed=seed, scales=(5, 9), near_duplicates=False, stratify="category"
        )
        result = run_split(tmp_path, config)
        assert result.test_categories == {"animals": 2, "vehicles": 1}
    test = pq.read_table(tmp_path / "test.parquet").to_pylist()
    assert {r["category"] for r in test} == {"animals", "vehicles"}
    assert {r["category_source"] for r in test} == {TAXONOMY_VERSION}
    assert set(NAMES) >= {r["category"] for r in pq.read_table(tmp_path / "train.parquet").to_pylist()}
    with pytest.raises(ValueError, match="stratify 'scale'"):
        run_split(tmp_path, SplitConfig(num_videos=3, scales=(5, 9), near_duplicates=False, stratify="scale"))


def test_the_documented_taxonomy_is_the_one_in_the_code() -> None:
    from sfi_core.categories import taxonomy_markdown

    docs = (Path(__file__).parents[1] / "docs" / "data.md").read_text()
    assert taxonomy_markdown() in docs, "regenerate the table in docs/data.md from taxonomy_markdown()"
