"""Readies a Tryton database for Kith's connector tests and benchmarks (run with the virtualenv's
python, after `trytond-admin --all` activated party, product, sale and account_invoice):
a company (USD), a chart of accounts, fiscal years for last year, this year and the next with invoice
sequences and periods, a direct payment term, a cash payment method (to pay invoices), an
account category and the service product `KITH-SERVICE` that a deal without lines is sold as.

    python setup_db.py CONFIG DATABASE
"""
import datetime
import sys
from decimal import Decimal

from proteus import Model, config as proteus_config
from trytond.modules.account.tests.tools import create_chart, get_accounts
from trytond.modules.account_invoice.tests.tools import (
    create_payment_term, set_fiscalyear_invoice_sequences)
from trytond.modules.company.tests.tools import create_company, get_company


def main(config_file, database):
    cfg = proteus_config.set_trytond(database=database, config_file=config_file)
    Party = Model.get('party.party')
    org = Party(name='Kith Test Organisation')
    org.save()
    create_company(party=org, currency='USD')
    company = get_company()
    create_chart(company)
    today = datetime.date.today()
    FiscalYear = Model.get('account.fiscalyear')
    Sequence = Model.get('ir.sequence.strict')
    SequenceType = Model.get('ir.sequence.type')
    move_type, = SequenceType.find([('name', '=', 'Account Move')], limit=1)
    for year in (today.year - 1, today.year, today.year + 1):
        moves = Sequence(name=str(year), sequence_type=move_type, company=company)
        moves.save()
        fiscalyear = FiscalYear(name=str(year), company=company, move_sequence=moves,
            start_date=datetime.date(year, 1, 1), end_date=datetime.date(year, 12, 31))
        set_fiscalyear_invoice_sequences(fiscalyear)
        fiscalyear.save()
        fiscalyear.click('create_period')
    accounts = get_accounts(company)

    term = create_payment_term()
    term.save()

    Journal = Model.get('account.journal')
    PaymentMethod = Model.get('account.invoice.payment.method')
    cash_journal, = Journal.find([('type', '=', 'cash')])
    method = PaymentMethod(name='Cash', journal=cash_journal,
        credit_account=accounts['cash'], debit_account=accounts['cash'])
    method.save()

    Category = Model.get('product.category')
    category = Category(name='Services', accounting=True,
        account_expense=accounts['expense'], account_revenue=accounts['revenue'])
    category.save()

    Uom = Model.get('product.uom')
    unit, = Uom.find([('name', '=', 'Unit')])
    Template = Model.get('product.template')
    template = Template(name='Services (Kith deals)', code='KITH-SERVICE',
        default_uom=unit, type='service', salable=True, list_price=Decimal('0'),
        account_category=category)
    template.save()

    # Parties get the direct payment term unless they say otherwise.
    Configuration = Model.get('account.configuration')
    configuration = Configuration(1)
    configuration.default_customer_payment_term = term
    configuration.save()
    print('ready', flush=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
