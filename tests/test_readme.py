"""The README's settings table is the declared settings, nothing more or less."""

import re
from pathlib import Path

from pyinfra_wordpress_lb.deploys.settings import all_settings, markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_settings_table_matches_declarations():
    text = README.read_text()
    block = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", text, re.S)
    assert block, "README lacks the settings block"
    assert block.group(1).strip() == markdown_table(), "run `make settings` to regenerate it"


def test_every_setting_is_declared_once():
    names = [s.name for _, s in all_settings()]
    assert len(names) == len(set(names))


def test_the_own_hosts_example_plans_as_written(tmp_path):
    """README's `hosts.toml` and `group_data/all.py`, planned on @fake hosts (their SSH
    settings left out): no validation error, every host gets its tiers."""
    import tomllib

    from tests.fakedeploy import plan

    text = README.read_text()
    section = text[text.index("## Deploying to your own hosts"):text.index(
        "### Using the deploys from your own pyinfra project")]
    hosts = tomllib.loads(re.search(r"```toml\n(.*?)```", section, re.S).group(1))["hosts"]
    settings: dict = {}
    exec(re.search(r"```python\n(# group_data/all.py\n.*?)```", section, re.S).group(1),
         {}, settings)
    groups: dict[str, list[str]] = {}
    host_data = {}
    for name, data in hosts.items():
        for group in data["groups"]:
            groups.setdefault(group, []).append(name)
        host_data[name] = {k: v for k, v in data.items()
                           if k != "groups" and not k.startswith(("ssh_", "_"))}
    result = plan(groups, tmp_path / "hosts.secrets.json", data=settings, host_data=host_data)
    assert sorted(result) == ["db1", "lb1", "lb2", "web1", "web2"]
    assert any(name.startswith("Shared address") for name, _ in result["lb2"])


def test_the_sites_example_plans_as_written(tmp_path):
    """README's `sites` example on @fake hosts: the site is deployed with its own files,
    database and user."""
    from tests.fakedeploy import plan

    text = README.read_text()
    section = text[text.index("## Sites"):text.index("## Operations: changing a running site")]
    settings: dict = {}
    exec(re.search(r"```python\n(# group_data/all.py\n.*?)```", section, re.S).group(1),
         {}, settings)
    result = plan({"lb": ["lb1"], "web": ["web1", "web2"], "db": ["db1"]},
                  tmp_path / "hosts.secrets.json", data=settings)
    web = " ".join(c for _, commands in result["web1"] for c in commands)
    assert "/var/www/shop/releases/" in web and "wp-shop" in web
    conf = " ".join(c for name, commands in result["lb1"] for c in commands
                    if name == "Balancer | Write the balancer vhost")
    assert "server_name shop.example;" in conf
    assert "return 301 https://shop.example.com$request_uri;" in conf
