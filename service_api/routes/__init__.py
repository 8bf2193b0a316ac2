"""One router per resource, mounted under ``/api/v1`` by :func:`service_api.app.create_app`."""
