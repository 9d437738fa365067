/** The page title in the top bar: the product name and where the user is. */
export function Brand({ sub }: { sub: string }) {
  return (
    <div className="brand">
      <span className="brand__logo" aria-hidden="true" />
      <h1>
        crmpulse <span className="brand__sub">{sub}</span>
      </h1>
    </div>
  );
}
