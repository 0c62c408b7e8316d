"""Content categories of a clip (paper Fig. 3a), from its caption: one documented, weight-free taxonomy.

The rule, in full (docs/data.md repeats it):

1. Style first. A caption that says the footage is animated or a game (`animation`) or a screen or
   text (`text_screen`) gets that category whatever it shows: an animated dog is animation.
2. Otherwise the subject decides: every keyword hit scores its category's weight (sports, vehicles,
   animals, food: 2; people: 1.5, as people appear beside most other subjects). The highest score
   wins; on a tie the category mentioned first wins (dense captions name the main subject first).
3. A caption with no subject is categorized by its setting (nature, city, indoor), scored the same way.
4. No hit at all: `other`.

Keywords match whole words, case-insensitively, with an optional plural `s`/`es`; multi-word keywords
match as phrases. Change a list and bump TAXONOMY_VERSION: it is recorded with every category.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

TAXONOMY_VERSION = "taxonomy-v1"
OTHER = "other"


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    weight: float
    tier: str  # style (rule 1), subject (rule 2) or setting (rule 3)
    keywords: tuple[str, ...]


# fmt: off
TAXONOMY: tuple[Category, ...] = (
    Category(
        "animation",
        "animation & games",
        1,
        "style",
        (
            "animated", "animation", "cartoon", "anime", "cgi", "computer-generated", "computer generated",
            "3d render", "3d rendered", "rendered scene", "video game", "gameplay", "game character",
            "pixel art", "claymation", "stop-motion", "stop motion", "in-game", "minecraft",
        ),
    ),
    Category(
        "text_screen",
        "text & screen",
        1,
        "style",
        (
            "screen recording", "screenshot", "screencast", "user interface", "text overlay",
            "on-screen text", "slideshow", "presentation slide", "subtitle", "caption text",
            "terminal window", "webpage", "website", "browser window", "spreadsheet", "title card",
            "logo animation", "lower third", "code editor",
        ),
    ),
    Category(
        "sports",
        "sports",
        2,
        "subject",
        (
            "football", "soccer", "basketball", "tennis", "baseball", "golf", "hockey",
            "skateboard", "skateboarder", "skateboarding", "surfer", "surfing", "surfboard", "skier",
            "skiing", "snowboard", "snowboarder", "snowboarding", "cyclist", "bmx", "boxing",
            "boxer", "wrestling", "gymnast", "gymnastics", "athlete", "stadium",
            "jogger", "jogging", "marathon", "swimmer", "swimming pool", "yoga", "workout", "gym",
            "climber", "rock climbing", "volleyball", "referee", "goalkeeper", "race track",
            "martial art", "karate", "parkour", "dunk",
        ),
    ),
    Category(
        "vehicles",
        "vehicles",
        2,
        "subject",
        (
            "car", "truck", "bus", "train", "tram", "motorcycle", "motorbike", "scooter", "bicycle",
            "bike", "vehicle", "airplane", "aircraft", "plane", "helicopter", "jet", "boat", "ship",
            "sailboat", "yacht", "ferry", "canoe", "kayak", "tractor", "van", "taxi", "locomotive",
            "subway", "rocket", "traffic", "highway", "dashboard",
        ),
    ),
    Category(
        "animals",
        "animals",
        2,
        "subject",
        (
            "animal", "dog", "puppy", "retriever", "labrador", "poodle", "terrier", "bulldog", "cat", "kitten", "horse", "cow", "sheep", "goat", "pig",
            "chicken", "bird", "parrot", "eagle", "owl", "duck", "swan", "fish", "shark", "whale",
            "dolphin", "turtle", "frog", "snake", "lizard", "insect", "butterfly", "bee", "spider",
            "lion", "tiger", "elephant", "giraffe", "zebra", "monkey", "bear", "deer", "fox", "wolf",
            "rabbit", "bunny", "squirrel", "mouse", "hamster", "pet", "wildlife", "jellyfish",
            "penguin", "seal", "crab", "octopus", "flock", "herd",
        ),
    ),
    Category(
        "food",
        "food & cooking",
        2,
        "subject",
        (
            "food", "dish", "meal", "cooking", "chef", "kitchen counter", "recipe", "frying pan",
            "saucepan", "pot", "bowl of", "plate of", "sauce", "pasta", "pizza", "burger", "sandwich",
            "salad", "soup", "cake", "dessert", "bread", "dough", "vegetable", "fruit", "coffee",
            "tea", "drink", "cocktail", "restaurant", "baking", "grill", "noodle", "sushi", "egg",
        ),
    ),
    Category(
        "people",
        "people",
        1.5,
        "subject",
        (
            "man", "men", "woman", "women", "person", "people", "boy", "girl", "child", "children",
            "kid", "baby", "toddler", "teenager", "adult", "couple", "family", "crowd", "dancer",
            "dancing", "singer", "musician", "actor", "actress", "worker", "student", "speaker",
            "face", "smiling", "talking", "portrait", "group of friends",
        ),
    ),
    Category(
        "nature",
        "nature & landscapes",
        1,
        "setting",
        (
            "nature", "landscape", "mountain", "forest", "tree", "river", "lake", "ocean", "sea",
            "beach", "wave", "waterfall", "sky", "cloud", "sunset", "sunrise", "meadow",
            "grass", "flower", "garden", "desert", "snow", "glacier", "valley", "hill", "cliff",
            "canyon", "jungle", "countryside", "park", "rain", "storm", "lightning", "rock", "sand",
            "island", "coast", "woods", "leaves", "aerial view",
        ),
    ),
    Category(
        "city",
        "cities & buildings",
        1,
        "setting",
        (
            "city", "street", "road", "building", "skyscraper", "skyline", "downtown", "urban",
            "architecture", "bridge", "tower", "square", "plaza", "market", "alley", "sidewalk",
            "intersection", "town", "village", "house", "castle", "church", "temple", "monument",
            "construction site", "neon", "harbor", "harbour", "station", "cityscape",
        ),
    ),
    Category(
        "indoor",
        "indoor scenes",
        1,
        "setting",
        (
            "indoor", "indoors", "room", "living room", "bedroom", "kitchen", "bathroom", "office",
            "classroom", "studio", "hallway", "corridor", "interior", "sofa", "couch", "table",
            "desk", "chair", "shelf", "window", "wall", "floor", "ceiling", "lamp", "bed",
            "laboratory", "workshop", "warehouse", "shop", "store", "mall", "museum", "library",
        ),
    ),
)
# fmt: on

TIERS = ("style", "subject", "setting")  # the rules' order
NAMES: tuple[str, ...] = tuple(category.name for category in TAXONOMY) + (OTHER,)
LABELS: dict[str, str] = {category.name: category.label for category in TAXONOMY} | {OTHER: "other"}


@cache
def _pattern(category: Category) -> re.Pattern[str]:
    # Longest keywords first, so "living room" is one hit and not also "room".
    words = sorted(category.keywords, key=len, reverse=True)
    alternatives = "|".join(re.escape(word).replace(r"\ ", r"[\s-]+") for word in words)
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?:s|es)?(?![\w-])", re.IGNORECASE)


def _hits(category: Category, text: str) -> list[int]:
    """Start offsets of the category's keywords in `text`."""
    return [match.start() for match in _pattern(category).finditer(text)]


def categorize(caption: str | None) -> str:
    """The category name of a caption by the rule in this module's docstring (`other` when none)."""
    text = (caption or "").strip()
    if not text:
        return OTHER
    for tier in TIERS:
        best: tuple[float, int] | None = None
        chosen = None
        for category in (c for c in TAXONOMY if c.tier == tier):
            hits = _hits(category, text)
            if hits:
                rank = (len(hits) * category.weight, -hits[0])
                if best is None or rank > best:
                    best, chosen = rank, category.name
        if chosen is not None:
            return chosen
    return OTHER


def check_category(name: str) -> str:
    """`name` if it is a category of the taxonomy; ValueError naming the choices otherwise."""
    if name not in NAMES:
        raise ValueError(f"category {name!r} is not one of {', '.join(NAMES)}")
    return name


def taxonomy_markdown() -> str:
    """The taxonomy as a Markdown table (docs/data.md and the dataset card's appendix)."""
    lines = ["| category | label | rule | weight | keywords (examples) |", "|---|---|---|---|---|"]
    for c in TAXONOMY:
        lines.append(
            f"| `{c.name}` | {c.label} | {c.tier} | {c.weight:g} | {', '.join(c.keywords[:8])}, ... |"
        )
    lines.append(f"| `{OTHER}` | other | - | - | no keyword matched |")
    return "\n".join(lines)
