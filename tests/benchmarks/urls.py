from django.urls import path

from config.urls import urlpatterns as gambit_urlpatterns
from tests.benchmarks.bare import bare_view

urlpatterns = [*gambit_urlpatterns, path("bench/bare/", bare_view)]
