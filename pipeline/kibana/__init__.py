"""Saved objects for Kibana 8 (and OpenSearch Dashboards) over the indices newswatch writes, and their import."""
