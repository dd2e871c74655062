-- each prescription with its first dispense and the dispensing pharmacy (macros/joined_facts.sql)
{{ prescriptions_joined_to_dispenses() }}
