"""The region's view: every site side by side with the site report's definitions, the pilot
before and after, saturation and idleness, and the funding indicators; built once as data,
rendered to five formats."""
