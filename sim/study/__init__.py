"""The 'which lever matters' study: global sensitivity (SALib), unit costs and funding, scenario
discovery and the study report."""
