from django.urls import path

from config.urls import urlpatterns as gambit_urlpatterns
from tests.benchmarks.bare import BareView

urlpatterns = [*gambit_urlpatterns, path("bench/bare/", BareView.as_view())]
