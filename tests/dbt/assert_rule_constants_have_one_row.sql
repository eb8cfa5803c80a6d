-- Seed pci_rule_constants is one row: the models cross join it, so a second
-- row would duplicate their rows and none would drop them all. Returns the
-- row count when it is not 1.
select count(*) as constant_rows
from {{ ref('pci_rule_constants') }}
having count(*) <> 1
