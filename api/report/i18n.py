"""Italian by default (1.234,5 and 26/11/2026), English on request."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


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
