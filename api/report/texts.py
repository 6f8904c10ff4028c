"""Every word the report prints, Italian by default (1.234,5 and 26/11/2026), English on
request: the labels, and the methodology prose that states every definition and threshold
the figures use."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the report's model imports nothing from here, but stay clear of cycles
    from collections.abc import Sequence

    from api.report.model import DeviceRef, Report


class Lang(StrEnum):
    it = "it"
    en = "en"


TEXT: dict[str, tuple[str, str]] = {
    "title": ("Rapporto di utilizzo", "Utilisation report"),
    "period": ("Periodo", "Period"),
    "generated": ("Generato il", "Generated on"),
    "s1": ("1. Quadro di riferimento", "1. Funding framework"),
    "s2": ("2. Inventario", "2. Inventory"),
    "s3": ("3. Disponibilità", "3. Availability"),
    "s4": ("4. Utilizzo per attrezzatura", "4. Use per piece of equipment"),
    "s5": ("5. Utenza", "5. Users"),
    "s6": ("6. Apertura", "6. Openness"),
    "s7": ("7. Efficienza", "7. Efficiency"),
    "s8": ("8. Evidenze e metodo", "8. Evidence and method"),
    "s9": ("9. Conclusioni", "9. Conclusions"),
    "fund": ("Fondo", "Fund"),
    "call": ("Avviso / atto", "Call / act"),
    "cup": ("CUP", "CUP"),
    "assets": ("Beni", "Assets"),
    "cost": ("Costo (€)", "Cost (€)"),
    "final_payment": ("Saldo", "Final payment"),
    "durability_until": ("Stabilità fino al", "Durability until"),
    "retention_until": ("Conservazione fino al", "Keep evidence until"),
    "pnrr_note": (
        "Beni PNRR: solo uso non commerciale.",
        "PNRR assets: non-commercial use only.",
    ),
    "device": ("Bene", "Asset"),
    "site": ("Sede", "Site"),
    "lab": ("Laboratorio", "Lab"),
    "kind": ("Tipo", "Kind"),
    "description": ("Descrizione", "Description"),
    "purchased": ("Acquisto", "Purchase"),
    "collaudo": ("Collaudo", "Acceptance test"),
    "hours": ("Orario dichiarato", "Declared opening hours"),
    "closures": ("Chiusure", "Closures"),
    "available_h": ("Ore disponibili", "Available hours"),
    "in_use_h": ("Ore di utilizzo", "Hours in use"),
    "observed_h": ("Ore osservate", "Observed hours"),
    "in_use_open_h": ("Ore di utilizzo in orario", "Hours in use within opening hours"),
    "after_hours_h": ("Ore fuori orario", "Hours outside opening hours"),
    "observed_open_h": ("Ore osservate in orario", "Observed hours within opening hours"),
    "utilisation": ("Tasso di utilizzo", "Utilisation"),
    "coverage": ("Copertura", "Coverage"),
    "sessions": ("Sessioni", "Sessions"),
    "alarm_h": ("Ore in allarme", "Hours in alarm"),
    "off_h": ("Ore spento", "Hours off"),
    "per_lab": ("Per laboratorio", "Per lab"),
    "licences": ("Licenze software", "Software licences"),
    "app": ("Software", "Software"),
    "peak_seats": ("Picco postazioni", "Peak seats"),
    "seats_owned": ("Licenze possedute", "Seats owned"),
    "peak_share": ("Picco / licenze", "Peak / seats"),
    "category": ("Categoria", "Category"),
    "share": ("Quota", "Share"),
    "quota_esterna": ("Quota esterna", "External share"),
    "month": ("Mese", "Month"),
    "cost_per_hour": ("Costo per ora di utilizzo (€)", "Cost per hour of use (€)"),
    "trend": ("Andamento mensile del tasso di utilizzo", "Monthly utilisation"),
    "openness_trend": ("Quota esterna per mese", "External share per month"),
    "by_category": ("Ore di utilizzo per categoria", "Hours in use by category"),
    "agent_versions": ("Versioni degli agenti", "Agent versions"),
    "version": ("Versione", "Version"),
    "gaps": ("Lacune", "Gaps"),
    "definitions": ("Definizioni e soglie", "Definitions and thresholds"),
    "sources": ("Fonti dei dati", "Data sources"),
    "unregistered": ("Dispositivi non inventariati", "Unregistered devices"),
    "underused": ("Beni sottoutilizzati", "Under-used assets"),
    "risks": ("Rischi per la stabilità delle operazioni", "Risks to durability"),
    "none": ("nessuno", "none"),
    "na": ("n/d", "n/a"),
    "total": ("Totale", "Total"),
    "its_student": ("Studenti ITS", "ITS students"),
    "school": ("Scuole secondarie", "Secondary schools"),
    "company": ("Imprese", "Companies"),
    "training_agency": ("Agenzie formative", "Training agencies"),
    "staff": ("Personale", "Staff"),
    "unknown": ("Non identificati", "Unidentified"),
    # The lab register (api/register_pdf.py)
    "register": ("Registro di utilizzo", "Lab use register"),
    "start": ("Inizio", "Start"),
    "end": ("Fine", "End"),
    "pseudonym": ("Pseudonimo", "Pseudonym"),
    "organisation": ("Organizzazione (prenotazione)", "Organisation (booking)"),
    "activity": ("Attività", "Activity"),
    "unbooked": ("non prenotato", "not booked"),
    "day_totals": ("Totali del giorno", "The day's totals"),
    "users": ("Utenti distinti", "Distinct users"),
    "booked_sessions": ("Sessioni in una prenotazione", "Sessions within a booking"),
    "signature": (
        "Il tecnico di laboratorio (nome e cognome) ______________________________\n\n"
        "Data ______________          Firma ______________________________",
        "Lab technician (name) ______________________________\n\n"
        "Date ______________          Signature ______________________________",
    ),
    "register_note": (
        "Sessioni misurate dagli agenti labmeter; gli utenti compaiono solo come pseudonimi "
        "(HMAC calcolato sull'agente) e categoria. Orari locali ({tz}).",
        "Sessions measured by labmeter's agents; users appear only as pseudonyms (an HMAC "
        "computed on the agent) and category. Local times ({tz}).",
    ),
}

WEEKDAYS = {
    Lang.it: ("lun", "mar", "mer", "gio", "ven", "sab", "dom"),
    Lang.en: ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def t(key: str, lang: Lang) -> str:
    it, en = TEXT[key]
    return it if lang is Lang.it else en


def num(value: float | None, lang: Lang, decimals: int = 1) -> str:
    """1.234,5 in Italian, 1,234.5 in English; ``n/d`` for a missing value."""
    if value is None:
        return t("na", lang)
    text = f"{value:,.{decimals}f}"
    if lang is Lang.it:
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def pct(value: float | None, lang: Lang, decimals: int = 1) -> str:
    if value is None:
        return t("na", lang)
    return f"{num(value * 100, lang, decimals)} %"


def day(value: date | None, lang: Lang) -> str:
    if value is None:
        return t("na", lang)
    return value.strftime("%d/%m/%Y") if lang is Lang.it else value.isoformat()


def moment(ms: int, lang: Lang, tz: str) -> str:
    local = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return local.strftime("%d/%m/%Y %H:%M" if lang is Lang.it else "%Y-%m-%d %H:%M")


def method(report: Report, lang: Lang) -> list[str]:
    """Every definition and threshold the figures use, one item each."""
    th = report["evidence"]["thresholds"]
    ev = report["evidence"]
    ext = ", ".join(t(c, lang) for c in ev["external_categories"])
    if lang is Lang.it:
        items = [
            "Fonte: campioni degli agenti labmeter (uno al minuto per bene) via MQTT, scritti in "
            "InfluxDB dal collector; per le ore chiuse e già aggregate si leggono i riepiloghi "
            "orari, per le altre i campioni grezzi.",
            "Ore di utilizzo: secondi in stato «in uso» riportati dall'agente (PC: sessione "
            "interattiva non bloccata con input negli ultimi T secondi, T = 180 s salvo diversa "
            "configurazione, o applicazione di catalogo attiva; macchine: lavorazione in corso).",
            "Ore disponibili: orario di apertura dichiarato del laboratorio, meno chiusure e "
            "festività nazionali (compresi Pasquetta e il patrono della sede).",
            "Tasso di utilizzo = ore di utilizzo in orario di apertura ÷ ore disponibili; i "
            "fermi restano al denominatore. L'uso fuori orario (corsi serali, lavorazioni "
            "notturne) è riportato a parte come «ore fuori orario» e non entra nel tasso, che "
            "non supera mai il 100 %; conta invece nella quota esterna e nel costo per ora.",
            "Copertura = ore osservate in orario di apertura ÷ ore disponibili. Il tempo non "
            "osservato (agente spento, rete assente) non è mai contato come inattività né come "
            "utilizzo.",
            f"Quota esterna = ore di utilizzo di {ext} ÷ ore di utilizzo totali.",
            "Picco postazioni: massimo, sui minuti del periodo, del numero di dispositivi con il "
            "software in esecuzione nello stesso minuto.",
            "Sessioni: campioni consecutivi di un bene con lo stesso pseudonimo (HMAC calcolato "
            f"sull'agente), con scarto massimo di {num(th['session_gap_tolerance_s'], lang, 0)} s;"
            " contate per periodi fino a 31 giorni.",
            "Costo per ora di utilizzo = costo del bene ÷ ore di utilizzo nel periodo (anche "
            "fuori orario).",
            f"Soglie: sottoutilizzo sotto il {pct(th['underused_below'], lang, 0)}; copertura "
            f"insufficiente sotto il {pct(th['low_coverage_below'], lang, 0)}; stabilità "
            f"{th['durability_years']} anni dal saldo; conservazione delle evidenze "
            f"{th['retention_years']} anni.",
            "Nessun nome, badge o titolo di finestra lascia l'agente: solo categorie e pseudonimi.",
        ]
    else:
        items = [
            "Source: labmeter agents' samples (one per minute per asset) over MQTT, written to "
            "InfluxDB by the collector; closed, rolled-up hours are read from hourly rollups, "
            "the rest from raw samples.",
            "Hours in use: seconds in state 'in use' reported by the agent (PCs: an unlocked "
            "interactive session with input in the last T seconds, T = 180 s unless configured, "
            "or a catalogued application busy; machines: a job running).",
            "Available hours: the lab's declared opening hours minus closures and national "
            "public holidays (Easter Monday and the site's patron saint included).",
            "Utilisation = hours in use within opening hours ÷ available hours; downtime stays "
            "in the denominator. Use outside opening hours (evening courses, overnight jobs) is "
            "reported apart as 'hours outside opening hours' and never enters utilisation, "
            "which cannot exceed 100 %; it does count in the external share and cost per hour.",
            "Coverage = observed hours within opening hours ÷ available hours. Unobserved time "
            "(agent down, no network) is never counted as idle nor as in use.",
            f"External share = hours in use by {ext} ÷ all hours in use.",
            "Peak seats: the most devices running the software in the same minute.",
            "Sessions: consecutive samples of one asset with the same pseudonym (HMAC computed on "
            f"the agent), at most {num(th['session_gap_tolerance_s'], lang, 0)} s apart; counted "
            "for periods up to 31 days.",
            "Cost per hour of use = the asset's cost ÷ hours in use in the period (after hours "
            "too).",
            f"Thresholds: under-used below {pct(th['underused_below'], lang, 0)}; insufficient "
            f"coverage below {pct(th['low_coverage_below'], lang, 0)}; durability "
            f"{th['durability_years']} years after final payment; evidence kept "
            f"{th['retention_years']} years.",
            "No name, badge id or window title leaves the agent: only categories and pseudonyms.",
        ]
    return items


def device_items(
    items: Sequence[DeviceRef], lang: Lang, values: Sequence[float | None] = ()
) -> list[str]:
    """site/lab/device of each listed asset, with its figure when ``values`` are given."""
    shown = [f" ({pct(v, lang)})" for v in values] or [""] * len(items)
    return [f"{i['site']}/{i['lab']}/{i['device']}{v}" for i, v in zip(items, shown, strict=True)]


def conclusions(report: Report, lang: Lang) -> list[tuple[str, list[str]]]:
    """Section 9: each heading with its list of assets."""
    c = report["conclusions"]
    return [
        (
            t("underused", lang),
            device_items(c["underused"], lang, [u["utilisation"] for u in c["underused"]]),
        ),
        (
            t("gaps", lang),
            device_items(c["low_coverage"], lang, [g["coverage"] for g in c["low_coverage"]]),
        ),
        (t("risks", lang), device_items(c["commercial_use_on_pnrr"], lang)),
    ]


def period_line(report: Report, lang: Lang) -> str:
    meta = report["meta"]
    tz = meta["timezone"]
    return (
        f"{t('period', lang)}: {moment(meta['start_ms'], lang, tz)} - "
        f"{moment(meta['end_ms'], lang, tz)} ({tz}). {t('generated', lang)} "
        f"{moment(meta['generated_ms'], lang, tz)}, labmeter {meta['labmeter']}."
    )
