"""The plugin template is collected only where it is installed: its tests import its own
package, which the core's test environment does not install (tests/test_plugin_kit.py
installs a copy in a fresh environment and runs them there)."""

collect_ignore = ["_template"]
