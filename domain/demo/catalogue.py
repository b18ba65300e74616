"""The demo catalogue: a fixed grocery assortment of product families, each sold in one or more
pack sizes and price tiers. It does not depend on the seed, so skus are stable across runs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from domain.products import PriceTier, Product


class Need(IntEnum):
    """Who a family is bought for; families with a need are only bought by households with it."""

    NONE = 0
    BABY = 1
    DOG = 2
    CAT = 3


@dataclass(frozen=True, slots=True)
class Family:
    """A product family. ``days_per_unit`` is how many days one unit of measure (1 l, 1 g,
    1 piece) lasts a one-person household; 0 means the family is bought on impulse, never as a
    staple."""

    category: str
    name: str
    unit: str
    sizes: tuple[tuple[float, int], ...]  # (pack size, STANDARD price in cents)
    tiers: str  # letters of B(udget), S(tandard), P(remium) on offer
    days_per_unit: float
    popularity: float
    tags: tuple[str, ...] = ()
    need: Need = Need.NONE

    @property
    def per_person(self) -> bool:
        """Whether consumption grows with the household (the baby's nappies do not)."""
        return self.need == Need.NONE


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    code: str
    standard_brand: str
    premium_brand: str
    food: bool = True


BUDGET_BRAND = "Omni Basics"
TIER_LETTERS = {"B": PriceTier.BUDGET, "S": PriceTier.STANDARD, "P": PriceTier.PREMIUM}
TIER_PRICE_FACTOR = {PriceTier.BUDGET: 0.7, PriceTier.STANDARD: 1.0, PriceTier.PREMIUM: 1.55}

CATEGORIES = (
    Category("dairy", "DAI", "Meadowfield", "Alpenhof"),
    Category("bakery", "BAK", "Golden Crust", "Maison Levain"),
    Category("produce", "PRO", "Fresh Fields", "Green Acre"),
    Category("meat", "MEA", "Butcher's Choice", "Highland Farm"),
    Category("fish", "FIS", "Harbour Catch", "North Atlantic Select"),
    Category("pantry", "PAN", "Casa Buona", "Artisan Table"),
    Category("breakfast", "BRE", "Sunrise", "Oak & Honey"),
    Category("snacks", "SNA", "Crunchies", "Harvest & Co"),
    Category("beverages", "BEV", "Brookside", "Clearwater Springs"),
    Category("frozen", "FRO", "Polar Kitchen", "Nordic Table"),
    Category("household", "HOU", "Brightway", "Ecoleaf", food=False),
    Category("personal care", "PER", "Purely", "Maison Belle", food=False),
    Category("baby", "BAB", "Little Steps", "Nature Baby", food=False),
    Category("pet", "PET", "Happy Paws", "Wild Origin", food=False),
    Category("wine & beer", "WIN", "Old Quarry", "Chateau Lumiere", food=False),
)

# Per category: (name, unit, (pack size, STANDARD cents)..., tiers, days per unit, popularity,
# tags, need)
# fmt: off
_TABLE: dict[str, list[tuple[Any, ...]]] = {
    "dairy": [
        ("Semi-skimmed milk", "l", ((1, 109), (2, 199)), "BSP", 2.5, 10, "chilled vegetarian"),
        ("Natural yoghurt", "g", ((500, 149),), "BSP", 0.008, 6, "chilled vegetarian"),
        ("Salted butter", "g", ((250, 279),), "BSP", 0.056, 7, "chilled vegetarian"),
        ("Mature cheddar", "g", ((400, 449),), "BSP", 0.03, 6, "chilled vegetarian"),
        ("Free-range eggs", "pcs", ((6, 229), (12, 419)), "SP", 1.8, 8, "chilled vegetarian"),
        ("Cream cheese", "g", ((200, 189),), "SP", 0.05, 3, "chilled vegetarian"),
    ],
    "bakery": [
        ("Sliced white bread", "g", ((800, 145),), "BS", 0.0044, 8, "fresh vegan"),
        ("Wholemeal bread", "g", ((800, 165),), "BSP", 0.005, 7, "fresh vegan wholegrain"),
        ("Sourdough loaf", "g", ((500, 349),), "P", 0.006, 3, "fresh vegan"),
        ("Butter croissants", "pcs", ((4, 229),), "SP", 1.75, 3, "fresh vegetarian"),
        ("Plain bagels", "pcs", ((5, 199),), "S", 1.5, 2, "fresh vegan"),
        ("Tortilla wraps", "pcs", ((8, 179),), "BS", 0, 2, "vegan"),
    ],
    "produce": [
        ("Bananas", "kg", ((1, 119),), "SP", 4.0, 9, "fresh vegan"),
        ("Gala apples", "kg", ((1, 229),), "BSP", 5.0, 7, "fresh vegan"),
        ("Vine tomatoes", "g", ((500, 179),), "SP", 0.008, 6, "fresh vegan"),
        ("Potatoes", "kg", ((2.5, 249),), "BS", 4.0, 6, "fresh vegan"),
        ("Brown onions", "kg", ((1, 109),), "S", 14.0, 5, "fresh vegan"),
        ("Carrots", "kg", ((1, 89),), "SP", 8.0, 5, "fresh vegan"),
        ("Ripe avocados", "pcs", ((2, 249),), "SP", 0, 3, "fresh vegan"),
        ("Baby spinach", "g", ((200, 169),), "SP", 0.015, 3, "fresh vegan"),
        ("Strawberries", "g", ((400, 299),), "SP", 0, 3, "fresh vegan seasonal"),
    ],
    "meat": [
        ("Chicken breast fillets", "g", ((500, 499),), "BSP", 0.01, 7, "chilled"),
        ("Beef mince 5% fat", "g", ((500, 449),), "BSP", 0.014, 6, "chilled"),
        ("Pork sausages", "g", ((400, 349),), "SP", 0, 4, "chilled"),
        ("Smoked back bacon", "g", ((300, 329),), "BS", 0.027, 4, "chilled"),
        ("Sliced ham", "g", ((200, 249),), "BSP", 0.025, 5, "chilled"),
        ("Sirloin steak", "g", ((400, 899),), "P", 0, 2, "chilled"),
    ],
    "fish": [
        ("Salmon fillets", "g", ((240, 549),), "SP", 0.03, 4, "chilled"),
        ("Cod fillets", "g", ((400, 599),), "SP", 0, 3, "chilled"),
        ("Cooked prawns", "g", ((250, 449),), "SP", 0, 2, "chilled"),
        ("Smoked mackerel", "g", ((200, 299),), "S", 0, 1, "chilled"),
        ("Smoked salmon", "g", ((100, 349),), "SP", 0, 2, "chilled"),
    ],
    "pantry": [
        ("Spaghetti", "g", ((500, 119),), "BSP", 0.014, 7, "vegan"),
        ("Basmati rice", "kg", ((1, 249),), "BSP", 14.0, 6, "vegan gluten-free"),
        ("Chopped tomatoes", "g", ((400, 69),), "BSP", 0.0125, 6, "vegan gluten-free"),
        ("Extra virgin olive oil", "l", ((0.5, 549),), "SP", 60.0, 4, "vegan gluten-free"),
        ("Plain flour", "kg", ((1.5, 129),), "BS", 0, 2, "vegan"),
        ("Granulated sugar", "kg", ((1, 119),), "S", 0, 2, "vegan gluten-free"),
        ("Tuna chunks in spring water", "g", ((160, 129),), "BS", 0.031, 4, ""),
        ("Baked beans", "g", ((415, 99),), "BS", 0.012, 4, "vegan"),
        ("Tomato and basil pasta sauce", "g", ((500, 229),), "SP", 0, 3, "vegan"),
    ],
    "breakfast": [
        ("Porridge oats", "kg", ((1, 169),), "BSP", 20.0, 5, "vegan wholegrain"),
        ("Cornflakes", "g", ((500, 249),), "BS", 0.02, 5, "vegan"),
        ("Crunchy granola", "g", ((500, 349),), "SP", 0.02, 3, "vegetarian"),
        ("Orange juice", "l", ((1, 189),), "BSP", 4.0, 6, "chilled vegan"),
        ("Ground coffee", "g", ((250, 399),), "SP", 0.048, 5, "vegan fairtrade"),
        ("Tea bags", "pcs", ((80, 299),), "BSP", 0.4, 5, "vegan fairtrade"),
        ("Strawberry jam", "g", ((340, 219),), "SP", 0, 2, "vegan"),
        ("Clear honey", "g", ((340, 399),), "SP", 0, 2, "vegetarian"),
    ],
    "snacks": [
        ("Ready salted crisps", "g", ((150, 179),), "BS", 0.027, 5, "vegan"),
        ("Milk chocolate", "g", ((100, 129),), "BSP", 0.04, 5, "vegetarian"),
        ("Digestive biscuits", "g", ((400, 139),), "BS", 0.02, 4, "vegetarian"),
        ("Salted peanuts", "g", ((200, 149),), "S", 0, 2, "vegan gluten-free"),
        ("Oat cereal bars", "pcs", ((6, 229),), "SP", 0, 3, "vegetarian"),
        ("Dark chocolate 70%", "g", ((100, 229),), "P", 0, 2, "vegan fairtrade"),
    ],
    "beverages": [
        ("Still spring water 6 x 1.5 l", "l", ((9, 229),), "BS", 0.67, 6, "vegan multipack"),
        ("Sparkling water", "l", ((1.5, 69),), "SP", 2.0, 3, "vegan"),
        ("Cola", "l", ((1.5, 189),), "BS", 2.67, 5, "vegan"),
        ("Cola zero sugar", "l", ((1.5, 189),), "S", 2.67, 3, "vegan sugar-free"),
        ("Cloudy apple juice", "l", ((1, 149),), "BS", 0, 3, "vegan"),
        ("Energy drink", "ml", ((250, 139),), "S", 0, 2, "vegan"),
        ("Oat drink", "l", ((1, 179),), "SP", 4.0, 3, "vegan dairy-free"),
    ],
    "frozen": [
        ("Garden peas", "kg", ((1, 149),), "BS", 14.0, 4, "frozen vegan"),
        ("Margherita pizza", "g", ((350, 249),), "BSP", 0, 5, "frozen vegetarian"),
        ("Cod fish fingers", "pcs", ((10, 229),), "BS", 0, 3, "frozen"),
        ("Vanilla ice cream", "l", ((1, 299),), "BSP", 0, 3, "frozen vegetarian"),
        ("Crinkle oven chips", "kg", ((1.5, 249),), "BS", 0, 3, "frozen vegan"),
    ],
    "household": [
        ("Laundry liquid", "l", ((1.5, 699),), "BSP", 18.7, 5, ""),
        ("Washing-up liquid", "ml", ((500, 129),), "BSP", 0.042, 5, ""),
        ("Toilet tissue", "pcs", ((9, 449),), "BSP", 1.33, 7, "multipack"),
        ("Kitchen roll", "pcs", ((2, 249),), "BS", 5.0, 4, ""),
        ("Bin bags", "pcs", ((20, 199),), "BS", 1.5, 3, ""),
        ("Dishwasher tablets", "pcs", ((30, 599),), "SP", 1.17, 3, ""),
        ("Multi-surface cleaner", "ml", ((750, 199),), "SP", 0, 2, ""),
    ],
    "personal care": [
        ("Fluoride toothpaste", "ml", ((75, 189),), "BSP", 0.4, 5, ""),
        ("Shampoo", "ml", ((250, 299),), "BSP", 0.14, 4, ""),
        ("Shower gel", "ml", ((250, 199),), "BSP", 0.1, 4, ""),
        ("Antiperspirant deodorant", "ml", ((150, 249),), "SP", 0.2, 4, ""),
        ("Liquid hand soap", "ml", ((250, 119),), "BS", 0, 2, ""),
    ],
    "baby": [
        ("Nappies size 4", "pcs", ((44, 899),), "BSP", 0.17, 8, "", Need.BABY),
        ("Sensitive baby wipes", "pcs", ((64, 199),), "BSP", 0.094, 6, "", Need.BABY),
        ("Infant formula", "g", ((800, 1199),), "SP", 0.00875, 4, "", Need.BABY),
        ("Fruit puree pouch", "g", ((120, 119),), "SP", 0.0083, 4, "vegan", Need.BABY),
    ],
    "pet": [
        ("Adult dry dog food", "kg", ((3, 1099),), "BSP", 6.7, 5, "", Need.DOG),
        ("Wet cat food pouches", "pcs", ((12, 499),), "BSP", 0.5, 5, "", Need.CAT),
        ("Clumping cat litter", "kg", ((10, 549),), "BS", 2.1, 3, "", Need.CAT),
        ("Dog training treats", "g", ((200, 299),), "SP", 0, 2, "", Need.DOG),
    ],
    "wine & beer": [
        ("Pilsner lager 4 x 440 ml", "pcs", ((4, 449),), "BSP", 1.75, 5, "alcohol"),
        ("Craft IPA 4 x 330 ml", "pcs", ((4, 699),), "SP", 0, 2, "alcohol"),
        ("Red wine", "l", ((0.75, 699),), "BSP", 9.3, 4, "alcohol vegan"),
        ("White wine", "l", ((0.75, 649),), "BSP", 0, 3, "alcohol vegan"),
        ("Prosecco", "l", ((0.75, 899),), "SP", 0, 2, "alcohol"),
        ("Apple cider 4 x 500 ml", "pcs", ((4, 499),), "S", 0, 2, "alcohol"),
    ],
}
# fmt: on

FAMILIES = tuple(
    Family(category, name, unit, sizes, tiers, days, popularity, tuple(tags.split()), *need)
    for category, rows in _TABLE.items()
    for name, unit, sizes, tiers, days, popularity, tags, *need in rows
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One sellable product of a family, with the index of the family it belongs to."""

    family: int
    product: Product


def _shelf_price(standard: int, tier: PriceTier) -> int:
    """Tier-adjusted price rounded to the .x9 endings shelves use."""
    cents = round(standard * TIER_PRICE_FACTOR[tier] / 10) * 10 - 1
    return max(cents, 19)


def _pack_label(size: float, unit: str) -> str:
    if unit == "pcs":
        return f"{size:g} pack"
    return f"{size:g} {unit}"


def build_catalogue() -> tuple[Variant, ...]:
    """Every family in every pack size and tier, with skus numbered per category."""
    by_name = {c.name: c for c in CATEGORIES}
    counters = dict.fromkeys(by_name, 0)
    variants: list[Variant] = []
    for index, family in enumerate(FAMILIES):
        category = by_name[family.category]
        for size, standard_price in family.sizes:
            for letter in family.tiers:
                tier = TIER_LETTERS[letter]
                counters[family.category] += 1
                brand, name, tags = {
                    PriceTier.BUDGET: (BUDGET_BRAND, family.name, ("own-label", "value")),
                    PriceTier.STANDARD: (category.standard_brand, family.name, ()),
                    PriceTier.PREMIUM: (
                        category.premium_brand,
                        f"Organic {family.name[0].lower()}{family.name[1:]}"
                        if category.food
                        else family.name,
                        ("organic",) if category.food else ("premium",),
                    ),
                }[tier]
                if "x" not in family.name.split():
                    name = f"{name} {_pack_label(size, family.unit)}"
                variants.append(
                    Variant(
                        family=index,
                        product=Product(
                            sku=f"{category.code}-{counters[family.category]:03d}",
                            name=name,
                            category=family.category,
                            brand=brand,
                            price_tier=tier,
                            pack_size=float(size),
                            unit=family.unit,
                            price=_shelf_price(standard_price, tier),
                            tags=tuple(dict.fromkeys((*family.tags, *tags))),
                        ),
                    )
                )
    return tuple(variants)
