"""Word resources for the offline paraphraser: synonym sets, intensity modifiers and frames.

Written by hand from everyday English and common photography / colour-grading vocabulary. It is
a small general thesaurus, not drawn from any corpus, dataset split or demo generator. Every set
holds phrases that can stand in for one another in a short look request ("cool morning" ->
"chilly dawn"); they are near-synonyms, not exact ones, which is why candidates are reviewed.

All entries are lower case. A phrase may appear in more than one set (its alternatives are then
the union). Sets are grouped by the part they play, because that decides which frames and
modifiers fit around them:

- ADJECTIVES take intensity modifiers ("slightly warm") and adjective frames ("make it warm").
- COMPARATIVES take comparative modifiers ("a bit warmer", "much darker").
- NOUNS are heads that fit "like a {x}" when they end a longer intent ("like a rainy night").
- ATTRIBUTES are nouns used as modifiers or named looks ("autumn", "golden hour", "70s");
  they get only neutral frames.
- ADVERBIALS are phrases such as "at night"; neutral frames only.
"""

from __future__ import annotations

SynonymSets = tuple[tuple[str, ...], ...]

ADJECTIVES: SynonymSets = (
    # temperature
    ("warm", "toasty", "sun-kissed", "balmy", "warm-toned"),
    ("cool", "cold", "chilly", "icy", "crisp", "frosty", "cool-toned"),
    # brightness and mood of the light
    ("bright", "airy", "luminous", "radiant", "light and airy"),
    ("dark", "moody", "shadowy", "dim", "low-key", "murky"),
    ("soft", "gentle", "dreamy", "delicate"),
    ("dreamy", "romantic", "tender", "ethereal", "dreamlike"),
    ("glowing", "glowy", "radiant"),
    # colour intensity
    ("vivid", "punchy", "saturated", "vibrant", "bold", "colourful", "colorful", "poppy"),
    ("faded", "washed-out", "washed out", "muted", "desaturated", "bleached"),
    ("pastel", "soft pastel", "candy-coloured", "candy-colored"),
    # contrast and texture
    ("high contrast", "high-contrast", "contrasty"),
    ("low contrast", "low-contrast", "flat", "matte"),
    ("grainy", "gritty", "textured"),
    ("sharp", "crisp", "clean"),
    ("clean", "fresh", "polished"),
    ("natural", "realistic", "true-to-life", "lifelike"),
    # era and medium
    ("vintage", "retro", "old-school", "nostalgic", "old-fashioned", "throwback", "classic"),
    ("cinematic", "filmic", "movie-like", "film-like"),
    ("noir", "film noir", "noir-style"),
    ("analog", "analogue", "film-like"),
    ("futuristic", "sci-fi", "high-tech"),
    ("neon", "neon-lit", "neon-soaked"),
    # feeling
    ("dramatic", "intense", "striking", "theatrical"),
    ("calm", "serene", "peaceful", "tranquil", "relaxed"),
    ("happy", "cheerful", "joyful", "upbeat", "uplifting"),
    ("sad", "melancholy", "melancholic", "gloomy", "somber", "sombre", "bleak"),
    ("cozy", "cosy", "snug", "homey"),
    ("eerie", "spooky", "creepy", "haunting"),
    ("mysterious", "enigmatic", "mystical"),
    ("energetic", "lively", "dynamic", "electric"),
    ("elegant", "classy", "refined", "sophisticated"),
    ("raw", "harsh", "gritty"),
    ("earthy", "rustic", "organic"),
    ("tropical", "beachy", "island-style"),
    ("urban", "city", "street-style"),
    # weather
    ("sunny", "sunlit", "sun-drenched", "sun-soaked"),
    ("rainy", "wet", "drizzly", "showery", "rain-soaked"),
    ("foggy", "misty", "hazy", "fog-covered"),
    ("snowy", "wintry", "wintery", "snow-covered"),
    ("cloudy", "overcast", "grey-sky", "gray-sky"),
    ("stormy", "thundery", "tempestuous"),
    ("summery", "summer-like", "summertime"),
    ("autumnal", "fall-like"),
    ("springlike", "spring-like", "springy"),
    # colours (used as adjectives: "orange sky", "make it teal")
    ("orange", "amber", "tangerine", "orangey"),
    ("blue", "azure", "bluish", "blue-ish"),
    ("teal", "cyan", "turquoise", "aqua"),
    ("pink", "rose", "rosy", "blush"),
    ("golden", "gold", "honey", "gilded"),
    ("green", "emerald", "greenish", "verdant"),
    ("purple", "violet", "lavender", "purplish", "lilac"),
    ("red", "crimson", "scarlet", "reddish"),
    ("yellow", "lemon", "yellowish", "buttery"),
    ("brown", "brownish", "chocolate", "coffee-coloured"),
    ("sepia", "brownish", "sepia-toned", "tea-stained"),
    ("grey", "gray", "greyish", "grayish", "silvery"),
    ("black and white", "black-and-white", "monochrome", "b&w", "b/w", "greyscale",
     "grayscale", "mono"),
    ("teal and orange", "orange and teal", "teal-orange"),
)

COMPARATIVES: SynonymSets = (
    ("warmer", "toastier"),
    ("cooler", "colder", "chillier"),
    ("brighter", "lighter"),
    ("darker", "dimmer", "moodier"),
    ("softer", "gentler"),
    ("sharper", "crisper"),
    ("more vivid", "more vibrant", "more saturated", "punchier"),
    ("more muted", "more faded", "less saturated"),
)

NOUNS: SynonymSets = (
    # times of day
    ("morning", "dawn", "sunrise", "early morning", "daybreak", "first light"),
    ("evening", "dusk", "twilight", "sundown"),
    ("sunset", "sundown", "setting sun"),
    ("night", "nighttime", "night-time"),
    ("midday", "noon", "high noon"),
    ("day", "daytime"),
    # places and scenes
    ("beach", "seaside", "shore", "coast"),
    ("forest", "woods", "woodland"),
    ("ocean", "sea"),
    ("countryside", "farmland", "meadow"),
    ("cityscape", "skyline"),
    ("street", "alley"),
    ("party", "celebration"),
    ("campfire", "bonfire"),
    ("candlelight", "candle light", "candle glow"),
    ("sky", "skies"),
    ("road trip", "drive"),
    # photography and film
    ("film", "movie"),
    ("photo", "photograph", "picture", "shot"),
    ("polaroid", "instant photo", "instant film"),
    ("postcard", "travel postcard"),
    ("music video", "music clip"),
    ("dream", "daydream"),
)

ATTRIBUTES: SynonymSets = (
    # seasons
    ("autumn", "fall", "autumnal"),
    ("summer", "summertime"),
    ("spring", "springtime"),
    ("winter", "wintertime"),
    # named moments of light
    ("golden hour", "magic hour", "the golden hour"),
    ("blue hour", "twilight blue"),
    # decades
    ("50s", "1950s", "fifties", "'50s"),
    ("60s", "1960s", "sixties", "'60s"),
    ("70s", "1970s", "seventies", "'70s"),
    ("80s", "1980s", "eighties", "'80s"),
    ("90s", "1990s", "nineties", "'90s"),
    # textures and grades named as nouns
    ("film grain", "grain", "grainy film"),
    ("earth tones", "earthy tones", "earthy colours", "earthy colors"),
    ("skin tones", "skin tone"),
    ("warmth", "warm tones", "warm hues"),
    ("contrast", "punch"),
    ("glow", "soft glow", "haze"),
)

ADVERBIALS: SynonymSets = (
    ("at night", "after dark", "by night", "after nightfall"),
    ("in the morning", "at dawn", "at sunrise", "early in the day"),
    ("in the evening", "at dusk", "at twilight"),
    ("in the rain", "in a downpour"),
    ("in winter", "in wintertime"),
    ("in summer", "in the summertime"),
    ("by the sea", "by the ocean", "at the seaside"),
)

# Intensity modifiers, in groups that can be swapped for each other without changing the
# direction of the request. "up"/"down" go before adjectives, "cmp_*" before comparatives.
MODIFIERS: dict[str, tuple[str, ...]] = {
    "up": ("very", "super", "really", "extra", "extremely"),
    "down": ("a bit", "slightly", "a little", "somewhat", "mildly", "subtly", "kind of",
             "lightly"),
    "cmp_up": ("much", "a lot", "way", "even", "far"),
    "cmp_down": ("a bit", "a little", "slightly", "somewhat", "a touch", "a tad"),
}

# Adjectives that do not take "very" or "slightly" ("slightly black and white"); a modifier for
# them becomes an amount frame instead ("a touch of monochrome").
NON_GRADABLE: frozenset[str] = frozenset({
    "black and white", "black-and-white", "monochrome", "b&w", "b/w", "greyscale", "grayscale",
    "mono", "teal and orange", "orange and teal", "teal-orange", "noir", "film noir",
    "noir-style", "analog", "analogue", "film-like", "movie-like", "sci-fi", "high-tech",
    "city", "urban", "street-style", "island-style", "summertime", "summer-like", "fall-like",
    "spring-like", "true-to-life", "sepia-toned", "candy-coloured", "candy-colored",
    "neon-lit", "neon-soaked", "sun-drenched", "sun-soaked", "rain-soaked", "fog-covered",
    "snow-covered",
})

# Words that set the direction of a request. The paraphraser never inserts, removes or swaps
# them ("less saturated" must not become "saturated"), and does not put a modifier after them.
FIXED_WORDS: frozenset[str] = frozenset(
    {"more", "less", "not", "no", "too", "without", "never", "don't", "dont"})

# Frames: templates around the core of an intent. "{x}" is the core.
NEUTRAL_FRAMES: tuple[str, ...] = (
    "{x} look", "{x} vibe", "{x} feel", "{x} style", "{x} tones", "{x} mood", "{x} please",
    "give it a {x} look", "{x} aesthetic", "{x} vibes", "go for a {x} look",
)
ADJECTIVE_FRAMES: tuple[str, ...] = (
    "make it {x}", "something {x}", "make it look {x}", "make it feel {x}",
)
NOUN_FRAMES: tuple[str, ...] = (
    "like a {x}", "make it look like a {x}", "feels like a {x}",
)
# Amount frames: a modifier for cores that have no adjective to modify ("a hint of Morocco").
AMOUNT_FRAMES: tuple[str, ...] = (
    "a touch of {x}", "a hint of {x}", "a bit of {x}", "lots of {x}", "subtle {x} look",
    "strong {x} look",
)

# Frames recognised and stripped from a source before a new one is put around it, so frames
# never stack ("make it make it warm"). Longest first is handled by the paraphraser.
PREFIX_FRAMES: tuple[str, ...] = (
    "make it look like a", "make it look like an", "make it look like", "make it look",
    "make it feel like a", "make it feel like an", "make it feel like", "make it feel",
    "make it", "make this look like a", "make this look like", "make this look", "make this",
    "make the video look like a", "make the video look", "make the video",
    "make my video look like a", "make my video look", "make my video",
    "can you make it", "could you make it", "please make it",
    "give it a", "give it an", "give it", "go for a", "go for an", "go for",
    "feels like a", "feels like an", "feels like", "like a", "like an",
    "i want a", "i want an", "i want", "i'd like a", "i'd like", "something",
    "a touch of", "a hint of", "a bit of", "lots of", "please",
)
SUFFIX_FRAMES: tuple[str, ...] = (
    "look", "looks", "vibe", "vibes", "feel", "feeling", "style", "tones",
    "tone", "hues", "mood", "aesthetic", "please", "filter", "effect", "grade", "colour grade",
    "color grade", "colours", "colors", "palette",
)
