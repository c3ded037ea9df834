fn main(){ print!("{}", firecamp_manage::crd::crd_yaml()); }
