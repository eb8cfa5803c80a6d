{#
  The rules' building blocks that several models share:

  - pci_in_effect(month_start, valid_from, valid_to): the predicate "in effect
    in the month" [D-1], for associations and affiliations alike.
  - pci_metric_names(): the six metric keys in the order of their number (seed
    pci_metrics holds the same keys with their threshold and max points).
  - pci_pivot(column, values, then_value, aggregate, suffix): one aggregated
    column per value, e.g. the threshold of every metric from seed pci_metrics.
#}

{# In effect in the month that starts on month_start [D-1]: valid_from <= EOM(m)
   and (valid_to is null or valid_to >= EOM(m)). #}
{% macro pci_in_effect(month_start, valid_from='valid_from', valid_to='valid_to') -%}
    ({{ valid_from }} <= {{ pci_end_of_month(month_start) }}
        and ({{ valid_to }} is null or {{ valid_to }} >= {{ pci_end_of_month(month_start) }}))
{%- endmacro %}


{# The metric keys, as in seed pci_metrics and pci_metric_contributions.metric. #}
{% macro pci_metric_names() -%}
    {{ return([
        'net_new_revenue',
        'net_customer_adds',
        'functional_consultants',
        'developers',
        'new_deployments',
        'mau_growth',
    ]) }}
{%- endmacro %}


{# For each value: aggregate(case when column = 'value' then then_value end) as value<suffix>,
   comma-separated (no trailing comma). #}
{% macro pci_pivot(column, values, then_value, aggregate='max', suffix='') -%}
    {%- for value in values %}
        {{ aggregate }}(case when {{ column }} = '{{ value }}' then {{ then_value }} end) as {{ value ~ suffix }}
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}
