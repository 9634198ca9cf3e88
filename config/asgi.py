import os

from django.core.asgi import get_asgi_application

# Production unless told otherwise: a forgotten variable must fail closed (no key, no DEBUG),
# never serve with a published key; make run chooses config.settings.development.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()
