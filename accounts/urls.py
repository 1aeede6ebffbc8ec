from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from accounts.sso import views as sso_views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/code/", views.SignInCodeView.as_view(), name="login_code"),
    path("logout/", sso_views.sso_logout, name="logout"),
    path("sso/<slug:slug>/login/", sso_views.sso_begin, name="sso_begin"),
    path("sso/<slug:slug>/callback/", sso_views.sso_callback, name="sso_callback"),
    path("sso/<slug:slug>/acs/", sso_views.sso_acs, name="sso_acs"),
    path("sso/<slug:slug>/complete/", sso_views.sso_complete, name="sso_complete"),
    path("sso/<slug:slug>/metadata/", sso_views.sso_metadata, name="sso_metadata"),
    path("sso/<slug:slug>/sls/", sso_views.sso_sls, name="sso_sls"),
    path("sso/<slug:slug>/backchannel-logout/", sso_views.sso_backchannel_logout, name="sso_backchannel_logout"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("two-factor/", views.two_factor, name="two_factor"),
    path("two-factor/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("two-factor/disable/", views.two_factor_disable_view, name="two_factor_disable"),
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
]
