# tests/test_config.py
import yaml


def test_gateway_config_valid():
    """Test that gateway config is valid YAML."""
    with open('config/gateway.yaml') as f:
        config = yaml.safe_load(f)

    assert '_format_version' in config
    assert 'services' in config
    assert len(config['services']) > 0

def test_all_services_have_routes():
    """Test that all services have at least one route."""
    with open('config/gateway.yaml') as f:
        config = yaml.safe_load(f)

    for service in config['services']:
        assert 'routes' in service
        assert len(service['routes']) > 0

def test_rate_limiting_configured():
    """Test that critical services have rate limiting."""
    with open('config/gateway.yaml') as f:
        config = yaml.safe_load(f)

    for service in config['services']:
        if service['name'] in ['user-service', 'order-service']:
            plugins = service.get('plugins', [])
            plugin_names = [p['name'] for p in plugins]
            assert 'rate-limiting' in plugin_names
