"""Writes the demo's checked-in CSVs: a train split and an eval split with unseen values.

The eval split deliberately holds products and cities that never occur in train, so
Transform's vocabularies (analyzed on train only) map them to OOV buckets in the
clean config and to -1 in the broken config. Rerunning this script with the same
seed rewrites byte-identical files.

Usage: .venv/bin/python pipeline/make_data.py
"""

import csv
import math
import pathlib
import random

SEED = 20240601
NUM_TRAIN_ROWS = 1500
NUM_EVAL_ROWS = 500

PRODUCTS = [f"product_{i:02d}" for i in range(40)]
EVAL_ONLY_PRODUCTS = ["product_40", "product_41", "product_42"]
EVAL_ONLY_PRODUCT_ROWS = 9

CITIES = [
    "amsterdam",
    "athens",
    "barcelona",
    "berlin",
    "bordeaux",
    "brussels",
    "budapest",
    "copenhagen",
    "dublin",
    "edinburgh",
    "florence",
    "geneva",
    "hamburg",
    "helsinki",
    "krakow",
    "lisbon",
    "lyon",
    "madrid",
    "milan",
    "munich",
    "oslo",
    "paris",
    "prague",
    "rome",
    "vienna",
]
EVAL_ONLY_CITIES = ["reykjavik", "riga", "tallinn"]
EVAL_ONLY_CITY_ROWS = 7

# A later "serving" span, logged without labels, checked in raw form against the
# trained transform graph: new products and cities appear that the vocabularies lack.
NUM_SERVING_ROWS = 300
SERVING_ONLY_PRODUCTS = {"product_50": 12, "product_51": 5}
SERVING_ONLY_CITIES = {"vilnius": 20, "sofia": 8, "porto": 3}
SERVING_COLUMNS = ["product", "city", "age", "month"]

COLUMNS = ["product", "city", "age", "month", "clicked"]
DATA_ROOT = pathlib.Path(__file__).resolve().parent / "data"


def _zipf_weights(count: int, exponent: float = 1.1) -> list[float]:
    return [1.0 / (rank + 1) ** exponent for rank in range(count)]


def _row(rng: random.Random, product: str, city: str) -> dict[str, object]:
    age = round(rng.uniform(18.0, 80.0), 1)
    month = rng.randint(1, 12)
    product_rank = int(product.rsplit("_", 1)[1])
    # Popular products, summer months and younger users click more often.
    logit = (
        -0.3
        + 1.2 * (product_rank < 5)
        + 0.8 * math.sin(math.pi * (month - 3) / 6.0)
        - 0.03 * (age - 40.0)
    )
    clicked = int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
    return {"product": product, "city": city, "age": age, "month": month, "clicked": clicked}


def _train_rows(rng: random.Random) -> list[dict[str, object]]:
    # Every product and city appears at least once, so train alone defines the vocabularies.
    products = PRODUCTS + rng.choices(
        PRODUCTS, weights=_zipf_weights(len(PRODUCTS)), k=NUM_TRAIN_ROWS - len(PRODUCTS)
    )
    cities = CITIES + rng.choices(
        CITIES, weights=_zipf_weights(len(CITIES), 0.8), k=NUM_TRAIN_ROWS - len(CITIES)
    )
    rng.shuffle(products)
    rng.shuffle(cities)
    return [_row(rng, product, city) for product, city in zip(products, cities, strict=True)]


def _eval_rows(rng: random.Random) -> list[dict[str, object]]:
    num_seen = NUM_EVAL_ROWS - len(EVAL_ONLY_PRODUCTS) * EVAL_ONLY_PRODUCT_ROWS
    products = EVAL_ONLY_PRODUCTS * EVAL_ONLY_PRODUCT_ROWS + rng.choices(
        PRODUCTS, weights=_zipf_weights(len(PRODUCTS)), k=num_seen
    )
    num_seen = NUM_EVAL_ROWS - len(EVAL_ONLY_CITIES) * EVAL_ONLY_CITY_ROWS
    cities = EVAL_ONLY_CITIES * EVAL_ONLY_CITY_ROWS + rng.choices(
        CITIES, weights=_zipf_weights(len(CITIES), 0.8), k=num_seen
    )
    rng.shuffle(products)
    rng.shuffle(cities)
    return [_row(rng, product, city) for product, city in zip(products, cities, strict=True)]


def _serving_rows(rng: random.Random) -> list[dict[str, object]]:
    new_products = [p for p, rows in SERVING_ONLY_PRODUCTS.items() for _ in range(rows)]
    products = new_products + rng.choices(
        PRODUCTS, weights=_zipf_weights(len(PRODUCTS)), k=NUM_SERVING_ROWS - len(new_products)
    )
    new_cities = [c for c, rows in SERVING_ONLY_CITIES.items() for _ in range(rows)]
    cities = new_cities + rng.choices(
        CITIES, weights=_zipf_weights(len(CITIES), 0.8), k=NUM_SERVING_ROWS - len(new_cities)
    )
    rng.shuffle(products)
    rng.shuffle(cities)
    rows = [_row(rng, product, city) for product, city in zip(products, cities, strict=True)]
    for row in rows:
        del row["clicked"]
    return rows


def _write_csv(
    path: pathlib.Path, rows: list[dict[str, object]], columns: list[str] = COLUMNS
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as csv_file:
        writer = csv.DictWriter(csv_file, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    rng = random.Random(SEED)
    train_rows = _train_rows(rng)
    eval_rows = _eval_rows(rng)
    _write_csv(DATA_ROOT / "train" / "train.csv", train_rows)
    _write_csv(DATA_ROOT / "eval" / "eval.csv", eval_rows)
    serving_rows = _serving_rows(rng)
    _write_csv(DATA_ROOT / "serving" / "serving.csv", serving_rows, SERVING_COLUMNS)
    print(
        f"Wrote {len(train_rows)} train rows and {len(eval_rows)} eval rows under {DATA_ROOT}; "
        f"eval has {len(EVAL_ONLY_PRODUCTS) * EVAL_ONLY_PRODUCT_ROWS} rows with unseen products "
        f"and {len(EVAL_ONLY_CITIES) * EVAL_ONLY_CITY_ROWS} rows with unseen cities."
    )


if __name__ == "__main__":
    main()
