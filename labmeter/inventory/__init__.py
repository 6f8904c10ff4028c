"""The inventory: sites, labs with opening hours and closures, equipment and software licences.

``model`` holds what it describes, ``calendar`` the public holidays labs close on, ``load`` the
YAML file with its checks (every problem with file and line), ``money`` amounts as typed and
``csv_import`` equipment from a spreadsheet.
"""

from labmeter.inventory.csv_import import equipment_from_csv, merge_equipment
from labmeter.inventory.load import load, parse
from labmeter.inventory.model import (
    DAYS,
    FUNDS,
    Closure,
    Equipment,
    Funding,
    Identity,
    Inventory,
    InventoryError,
    Lab,
    Site,
    Software,
    Tenure,
)

__all__ = [
    "DAYS",
    "FUNDS",
    "Closure",
    "Equipment",
    "Funding",
    "Identity",
    "Inventory",
    "InventoryError",
    "Lab",
    "Site",
    "Software",
    "Tenure",
    "equipment_from_csv",
    "load",
    "merge_equipment",
    "parse",
]
