"""Fills a Tryton database (made by setup_db.py) for the connector's benchmark, in one
transaction through Tryton's own models (not behind its back): PARTIES customers, each with an
address and an e-mail, and INVOICES draft customer invoices spread over them.

    python bulk.py CONFIG DATABASE PARTIES INVOICES
"""
import datetime
import sys
from decimal import Decimal


def main(config_file, database, parties, invoices):
    from trytond import config
    config.update_etc(config_file)
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    Pool.start()
    pool = Pool(database)
    context = {'company': 1, 'companies': [1], 'company_filter': 'one', 'language': 'en'}
    with Transaction().start(database, 0, readonly=True):
        pool.init()
    with Transaction().start(database, 1, context=context) as transaction:
        Party = pool.get('party.party')
        Invoice = pool.get('account.invoice')
        Account = pool.get('account.account')
        Journal = pool.get('account.journal')
        Company = pool.get('company.company')
        company = Company(1)
        receivable, = Account.search([('type.receivable', '=', True), ('closed', '!=', True)], limit=1)
        revenue, = Account.search([('type.revenue', '=', True), ('closed', '!=', True)], limit=1)
        journal, = Journal.search([('type', '=', 'revenue')], limit=1)
        made = []
        for start in range(0, parties, 1000):
            made.extend(Party.create([{
                'name': f'Bench customer {i:05d}',
                'addresses': [('create', [{
                    'street': f'{i} Bench Street', 'city': 'Benchville',
                    'postal_code': str(10000 + i % 90000)}])],
                'contact_mechanisms': [('create', [{'type': 'email', 'value': f'ap{i}@bench.test'}])],
                } for i in range(start, min(start + 1000, parties))]))
        addresses = {p.id: p.addresses[0].id for p in made}
        today = datetime.date.today()
        for start in range(0, invoices, 100):
            Invoice.create([{
                'type': 'out',
                'company': company.id,
                'currency': company.currency.id,
                'party': made[i % len(made)].id,
                'invoice_address': addresses[made[i % len(made)].id],
                'account': receivable.id,
                'journal': journal.id,
                'invoice_date': today,
                'lines': [('create', [{
                    'type': 'line', 'account': revenue.id, 'quantity': 1,
                    'unit_price': Decimal(100 + i % 900), 'description': f'Bench line {i}',
                    'currency': company.currency.id, 'company': company.id}])],
                } for i in range(start, min(start + 100, invoices))])
        transaction.commit()
    print('filled', flush=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
