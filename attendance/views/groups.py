"""Lecturers (and registrars): a section's groups of students (lab groups) and its allowed networks."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from attendance.forms import GroupMembersForm, GroupNameForm, SectionNetworksForm
from attendance.models import SectionGroup
from attendance.selectors import section_group_students, section_groups, section_network_list
from attendance.services import (
    section_group_create,
    section_group_delete,
    section_group_members_add,
    section_group_members_remove,
    section_group_rename,
    section_network_rule_set,
)
from attendance.views.access import lecturer_required, taught_group_or_404, taught_section_or_404
from attendance.views.messages import action_error, form_error
from campusiq.core.errors import ServiceError


@require_http_methods(["GET", "POST"])
@lecturer_required
def section_groups_page(request: HttpRequest, section_id: int) -> HttpResponse:
    """GET: the groups; POST: create one."""
    section = taught_section_or_404(request.user, section_id)
    form = GroupNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = section_group_create(section=section, name=form.cleaned_data["name"], actor=request.user)
        except ServiceError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Group %(name)s created. Add its members below.") % {"name": group.name})
            return redirect("attendance:group-detail", group_id=group.pk)
    status = 400 if form.errors else 200
    return render(
        request,
        "attendance/section_groups.html",
        {"section": section, "groups": section_groups(section), "form": form},
        status=status,
    )


def _group_page(request: HttpRequest, group: SectionGroup, *, status: int = 200, **forms) -> HttpResponse:
    members, others = section_group_students(group)
    return render(
        request,
        "attendance/group_detail.html",
        {
            "group": group,
            "section": group.section,
            "members": members,
            "rename_form": forms.get("rename_form") or GroupNameForm(initial={"name": group.name}),
            "add_form": forms.get("add_form") or GroupMembersForm(students=others, prefix="add"),
            "remove_form": forms.get("remove_form") or GroupMembersForm(students=members, prefix="remove"),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@lecturer_required
def group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    """GET: the group and its members; POST: rename it."""
    group = taught_group_or_404(request.user, group_id)
    if request.method == "GET":
        return _group_page(request, group)
    form = GroupNameForm(request.POST)
    if form.is_valid():
        try:
            section_group_rename(group=group, name=form.cleaned_data["name"], actor=request.user)
        except ServiceError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Group renamed."))
            return redirect("attendance:group-detail", group_id=group.pk)
    return _group_page(request, group, rename_form=form, status=400)


@require_POST
@lecturer_required
def group_members(request: HttpRequest, group_id: int) -> HttpResponse:
    """Adds (`action=add`) or removes (`action=remove`) the ticked students."""
    group = taught_group_or_404(request.user, group_id)
    action = request.POST.get("action")
    if action not in ("add", "remove"):
        messages.error(request, _("Choose whether to add or remove students. Nothing was changed."))
        return redirect("attendance:group-detail", group_id=group.pk)
    members, others = section_group_students(group)
    form = GroupMembersForm(request.POST, students=others if action == "add" else members, prefix=action)
    if form.is_valid():
        chosen = form.cleaned_data["students"]
        try:
            if action == "add":
                count = len(section_group_members_add(group=group, student_ids=chosen, actor=request.user))
                done = ngettext("%(count)d student added.", "%(count)d students added.", count)
            else:
                count = section_group_members_remove(group=group, student_ids=chosen, actor=request.user)
                done = ngettext("%(count)d student removed.", "%(count)d students removed.", count)
        except ServiceError as error:
            form_error(form, error)
        else:
            messages.success(request, done % {"count": count})
            return redirect("attendance:group-detail", group_id=group.pk)
    return _group_page(request, group, status=400, **{f"{action}_form": form})


@require_POST
@lecturer_required
def group_delete(request: HttpRequest, group_id: int) -> HttpResponse:
    group = taught_group_or_404(request.user, group_id)
    try:
        section_group_delete(group=group, actor=request.user)
    except ServiceError as error:
        messages.error(request, action_error(error))
        return redirect("attendance:group-detail", group_id=group.pk)
    messages.success(request, _("Group %(name)s deleted.") % {"name": group.name})
    return redirect("attendance:section-groups", section_id=group.section_id)


@require_http_methods(["GET", "POST"])
@lecturer_required
def section_networks(request: HttpRequest, section_id: int) -> HttpResponse:
    """GET: the section's allowed networks; POST: replace them (empty: the campus networks)."""
    section = taught_section_or_404(request.user, section_id)
    form = SectionNetworksForm(request.POST or None, initial={"networks": "\n".join(section_network_list(section))})
    if request.method == "POST" and form.is_valid():
        try:
            rule = section_network_rule_set(section=section, networks=form.cleaned_data["networks"], actor=request.user)
        except ServiceError as error:
            form_error(form, error)
        else:
            messages.success(
                request,
                _("Allowed networks saved.") if rule.networks else _("This section now uses the campus networks."),
            )
            return redirect("attendance:section-networks", section_id=section.pk)
    return render(
        request,
        "attendance/section_networks.html",
        {"section": section, "form": form},
        status=400 if form.errors else 200,
    )
