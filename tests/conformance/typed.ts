// Uses the types graphql-codegen generated for operations/donations.graphql; `tsc --noEmit
// --strict` must accept it (run by ./run).
import type {
  DonationsWithDonorsQuery,
  DonationsWithDonorsQueryVariables,
  DonationStatus,
} from './generated/from-introspection';
import type * as FromSdl from './generated/from-sdl';
import type { ContactCreateInput, Donation } from './generated/schema';

export const firstPage: DonationsWithDonorsQueryVariables = { first: 50 };

type Gift = DonationsWithDonorsQuery['donations']['edges'][number]['node'];

/** Each gift as "Ada Lovelace: 25 USD (RECEIVED), Patron", the donor's level when known. */
export function describe(result: DonationsWithDonorsQuery): string[] {
  return result.donations.edges.map(({ node }: { node: Gift }) => {
    const donor = node.contact ? `${node.contact.firstName ?? ''} ${node.contact.lastName ?? ''}`.trim() : 'anonymous';
    const status: DonationStatus = node.status;
    const level = node.contact?.donorSummary?.level ?? 'no level';
    return `${donor}: ${String(node.amount)} ${node.amountCurrency ?? ''} (${status}), ${level}`;
  });
}

/** The next page's variables, when there is one. */
export function nextPage(result: DonationsWithDonorsQuery): DonationsWithDonorsQueryVariables | null {
  const { hasNextPage, endCursor } = result.donations.pageInfo;
  return hasNextPage && endCursor ? { first: 50, after: endCursor } : null;
}

/** A new contact's input, typed by the schema's own types. */
export const newDonor: ContactCreateInput = { firstName: 'Ada', lastName: 'Lovelace' };

/** The schema's Donation type and the operation's gift agree on the fields both have. */
export const giftStatus = (gift: Pick<Donation, 'status'>): DonationStatus => gift.status;

// The SDL endpoint and introspection describe the same operation result.
export const sameShape = (result: DonationsWithDonorsQuery): FromSdl.DonationsWithDonorsQuery => result;
export const sameShapeBack = (result: FromSdl.DonationsWithDonorsQuery): DonationsWithDonorsQuery => result;
