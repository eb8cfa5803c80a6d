"""Sample-data generator: contract-valid export folders for a synthetic world.

``python -m pci generate --out DIR --first YYYY-MM --months N --partners N
--tenants N --seed S`` writes ``DIR/YYYY-MM/`` for ``N`` consecutive months,
each with the ten files of ``pci.core.contract.FILES`` (headers exactly the
contract columns) and ``_manifest.json`` (written last, so a folder is never
"ready" half-written).  :func:`generate` does the same from Python.

The output is a pure function of the arguments: one ``random.Random(seed)``
drives everything, entities are kept and written in creation order, and no
clock, uuid or hash-seeded ordering is used.  The same arguments give
byte-identical files.

The world is simulated month by month with compact per-subscription plans
(start, churn, seats, MAU curve, price, billing day), so memory stays bounded
by the number of entities and every file is streamed to disk while its sha256
is computed.

Modules (each imports only those listed before it):

* :mod:`.catalogue` - the product catalogue, the unknown product, list prices;
* :mod:`.names` - word pools for names and countries;
* :mod:`.entities` - tenants, subscription plans (monthly values as functions
  of the month), associations;
* :mod:`.state` - the world's entity lists, calendar, rng and constructors;
* :mod:`.partners` - the partner list (edge partners first);
* :mod:`.people` - an archetype partner's people and certifications;
* :mod:`.archetypes` - gold/silver/weak partners and their customers;
* :mod:`.edge_cases` - the scripted edge partners, tenants and people;
* :mod:`.filler` - the remaining tenants;
* :mod:`.world` - :class:`World`, the state built in a fixed order;
* :mod:`.writer` - a month's files and manifest, and :func:`generate`;
* :mod:`.cli` - ``configure(parser)`` / ``command(args)`` and :data:`DEFAULTS`.
"""
from __future__ import annotations

from .catalogue import CATALOGUE_PATH, UNKNOWN_PRODUCT
from .cli import DEFAULTS, command, configure
from .world import World
from .writer import generate

__all__ = ["CATALOGUE_PATH", "DEFAULTS", "UNKNOWN_PRODUCT", "World", "command", "configure",
           "generate"]
