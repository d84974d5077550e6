"""Acts in Tryton as its users would, for Kith's connector tests: through the running server
(proteus over XML-RPC), never behind its back.

    python ctl.py URL COMMAND [ARGS...]

URL is `http://USER:PASSWORD@HOST:PORT/DATABASE/` (its `rpc/` endpoint is used). Commands print one JSON document:
    post-invoice ID             posts a draft customer invoice (today)
    pay-invoice ID              pays what is left of a posted invoice in cash
    write-party ID JSON         writes fields of a party (`name`, or an address's `street`,
                                `city`, `postal_code` under `address`)
    create-party NAME           a party created in Tryton
    create-product CODE NAME PRICE
    counts                      how many parties, sales and invoices there are
    rename-parties N SUFFIX     appends SUFFIX to the names of the first N parties named
                                `Bench customer …` (the benchmark's incremental changes)
"""
import datetime
import json
import sys
from decimal import Decimal

from proteus import Model, Wizard, config as proteus_config


def main(url, command, *args):
    proteus_config.set_xmlrpc(url.rstrip('/') + '/rpc/')
    if command == 'post-invoice':
        Invoice = Model.get('account.invoice')
        invoice = Invoice(int(args[0]))
        if invoice.state == 'draft':
            invoice.invoice_date = datetime.date.today()
            invoice.click('post')
        out = {'state': invoice.state, 'number': invoice.number}
    elif command == 'pay-invoice':
        Invoice = Model.get('account.invoice')
        PaymentMethod = Model.get('account.invoice.payment.method')
        invoice = Invoice(int(args[0]))
        method, = PaymentMethod.find([('name', '=', 'Cash')])
        pay = Wizard('account.invoice.pay', [invoice])
        pay.form.payment_method = method
        pay.form.amount = invoice.amount_to_pay
        pay.execute('choice')
        invoice.reload()
        out = {'state': invoice.state, 'amount_to_pay': str(invoice.amount_to_pay)}
    elif command == 'write-party':
        Party = Model.get('party.party')
        party = Party(int(args[0]))
        values = json.loads(args[1])
        if 'name' in values:
            party.name = values['name']
        if 'address' in values:
            address = party.addresses[0] if party.addresses else party.addresses.new()
            for key, value in values['address'].items():
                setattr(address, key, value)
        party.save()
        out = {'id': party.id}
    elif command == 'create-party':
        Party = Model.get('party.party')
        party = Party(name=args[0])
        party.save()
        out = {'id': party.id}
    elif command == 'create-product':
        Template = Model.get('product.template')
        Uom = Model.get('product.uom')
        Category = Model.get('product.category')
        unit, = Uom.find([('name', '=', 'Unit')])
        category, = Category.find([('name', '=', 'Services')])
        template = Template(name=args[1], code=args[0], default_uom=unit,
            type='service', salable=True, list_price=Decimal(args[2]),
            account_category=category)
        template.save()
        out = {'id': template.products[0].id}
    elif command == 'rename-parties':
        Party = Model.get('party.party')
        parties = Party.find([('name', 'like', 'Bench customer %')], limit=int(args[0]), order=[('id', 'ASC')])
        for party in parties:
            party.name = party.name.split(' /')[0] + ' / ' + args[1]
        Party.save(parties)
        out = {'renamed': len(parties)}
    elif command == 'counts':
        out = {
            'parties': len(Model.get('party.party').find([])),
            'sales': len(Model.get('sale.sale').find([])),
            'invoices': len(Model.get('account.invoice').find([])),
        }
    else:
        raise SystemExit(f'unknown command {command}')
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:])
